// bf16 mixed precision (kernels/precision.h): the mode itself, the mixed
// linear against an independently rounded reference, and every layer kind in
// bf16 against the same layer in fp32 (outputs and all gradients within a
// stated tolerance, yet not identical: the bf16 path really ran), plus
// determinism for a fixed thread count. The bf16 tests skip, saying why, on
// CPUs without AVX512-BF16.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "crnn/kernels/precision.h"
#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/nn/window_conv.h"
#include "nn/combos.h"

using namespace crnn::nn;
using crnn::kernels::Precision;
using crnn::kernels::PrecisionGuard;
using crnn::testing::all_combos;
using crnn::testing::Combo;
using crnn::testing::combo_name;

namespace {

#define SKIP_WITHOUT_BF16()                                                              \
  if (!crnn::kernels::bf16_available())                                                  \
  GTEST_SKIP() << "bf16 unavailable here: " << crnn::kernels::bf16_unavailable_reason()

/// bf16 against fp32, as the relative L2 error ‖bf16 − fp32‖ / ‖fp32‖.
/// Operands rounded to 8 significant bits (relative error ≤ 2^-9 each) and
/// products rounded again give ~0.5 % per product; a norm rather than the
/// worst element because max pooling and max reduction are discontinuous: a
/// near-tie that rounding flips sends one window's gradient to its neighbour
/// (a few elements off by their whole size, measured up to 30 % of the
/// largest element, while the scan alone stays within 0.5 %).
void expect_bf16_close(const torch::Tensor& bf, const torch::Tensor& fp, const std::string& what,
                       double tol) {
  ASSERT_EQ(bf.sizes(), fp.sizes()) << what;
  ASSERT_EQ(bf.scalar_type(), torch::kFloat) << what << ": bf16 mode must hand back fp32";
  const double norm = fp.norm().item<double>();
  const double err = (bf - fp).norm().item<double>() / std::max(norm, 1e-12);
  EXPECT_LE(err, tol) << what << ": ‖bf16 − fp32‖ / ‖fp32‖ = " << err << " (‖fp32‖ = " << norm << ")";
}

/// One layer without max pooling: 4 % (the scan alone measured ≤ 0.5 %, a
/// ConvRecurrent with pool 1 0.4 %, the worst layer 3.3 %; with pool 2: 9 %,
/// from flipped near-ties). The gradients of a max reduction over the window
/// flip the same way: 35 % (worst measured 27 %; outputs stay within 4 %). A
/// whole model (two pooled front-end layers, the (B)LSTM, Dense, the class
/// layer and their backward): 15 %.
constexpr double kLayerTol = 4e-2, kMaxReduceGradTol = 0.35, kModelTol = 0.15;

struct Pass {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;  // input, then every parameter
};

/// Output and gradients of a fixed random weighting of the output, with the
/// module's parameters as they are, in `p`.
template <typename Run>
Pass run_in(Precision p, torch::nn::Module& m, const torch::Tensor& x_in, const Run& run) {
  PrecisionGuard guard(p);
  m.zero_grad();
  auto x = x_in.clone().requires_grad_(true);
  auto y = run(x);
  auto gen = at::detail::createCPUGenerator(99);
  auto w = torch::randn(y.sizes(), gen, y.options().requires_grad(false));
  (y * w).sum().backward();
  Pass r{y.detach().clone(), {x.grad().clone()}};
  for (auto& prm : m.parameters())
    r.grads.push_back(prm.grad().defined() ? prm.grad().clone() : torch::zeros_like(prm));
  return r;
}

template <typename Run>
void compare_precisions(torch::nn::Module& m, const torch::Tensor& x, const Run& run, const std::string& label,
                        double tol, double grad_tol = 0) {
  if (grad_tol == 0) grad_tol = tol;
  const auto fp = run_in(Precision::fp32, m, x, run);
  const auto bf = run_in(Precision::bf16, m, x, run);
  expect_bf16_close(bf.out, fp.out, label + " output", tol);
  EXPECT_FALSE(torch::equal(bf.out, fp.out)) << label << ": bf16 output identical to fp32 (bf16 not used?)";
  const auto names = m.named_parameters();
  ASSERT_EQ(fp.grads.size(), bf.grads.size());
  for (size_t i = 0; i < fp.grads.size(); ++i)
    expect_bf16_close(bf.grads[i], fp.grads[i],
                      label + " gradient of " + (i == 0 ? std::string("input") : names[i - 1].key()), grad_tol);
}

}  // namespace

TEST(Precision, ParsesAndNamesBothPrecisions) {
  for (auto p : {Precision::fp32, Precision::bf16})
    EXPECT_EQ(crnn::kernels::parse_precision(crnn::kernels::to_string(p)), p);
  try {
    crnn::kernels::parse_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"fp16\""), std::string::npos) << e.what();
  }
}

TEST(Precision, GuardIsScopedAndPerThread) {
  SKIP_WITHOUT_BF16();
  EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::fp32);
  {
    PrecisionGuard bf16(Precision::bf16);
    EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::bf16);
    Precision other = Precision::bf16;
    std::thread([&] { other = crnn::kernels::matmul_precision(); }).join();
    EXPECT_EQ(other, Precision::fp32) << "the mode leaked into another thread";
    {
      PrecisionGuard fp32(Precision::fp32);
      EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::fp32);
    }
    EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::bf16);
  }
  EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::fp32);
}

TEST(Precision, UnavailableBf16IsRefusedWithTheReason) {
  ::setenv("CRNN_DISABLE_BF16", "1", 1);
  EXPECT_FALSE(crnn::kernels::bf16_available());
  try {
    PrecisionGuard g(Precision::bf16);
    ::unsetenv("CRNN_DISABLE_BF16");
    FAIL() << "bf16 accepted while disabled";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CRNN_DISABLE_BF16"), std::string::npos) << e.what();
  }
  ::unsetenv("CRNN_DISABLE_BF16");
  EXPECT_EQ(crnn::kernels::matmul_precision(), Precision::fp32);
  EXPECT_EQ(crnn::kernels::bf16_available(), crnn::kernels::bf16_unavailable_reason().empty());
}

// The mixed linear against a reference computed independently: operands
// rounded to bf16, products summed in double, the sum rounded to bf16, the
// bias added in fp32. fp32 accumulation may differ from double by far less
// than one bf16 step, so the two agree to one bf16 rounding (2^-8 relative).
TEST(Precision, LinearIsBf16OperandsWithWideAccumulation) {
  SKIP_WITHOUT_BF16();
  torch::manual_seed(5);
  auto x = torch::randn({37, 3, 51}), w = torch::randn({29, 51}), b = torch::randn({29});
  torch::Tensor y;
  {
    PrecisionGuard g(Precision::bf16);
    y = crnn::kernels::linear(x, w, b);
  }
  ASSERT_EQ(y.scalar_type(), torch::kFloat);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{37, 3, 29}));
  auto round = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); };
  auto product = torch::matmul(round(x), round(w).t());
  auto ref = round(product) + b.to(torch::kDouble);
  auto err = (y.to(torch::kDouble) - ref).abs();
  auto bound = product.abs() * std::pow(2.0, -8) + 1e-5;
  EXPECT_TRUE((err <= bound).all().item<bool>()) << "worst excess " << (err - bound).max().item<double>();
  // And fp32 is not bf16: the fp32 path is the plain product.
  auto y32 = crnn::kernels::linear(x, w, b);
  EXPECT_TRUE(torch::allclose(y32, torch::matmul(x, w.t()) + b, 1e-5, 1e-5));
  // Double inputs (finite-difference tests) never drop to bf16.
  PrecisionGuard g(Precision::bf16);
  auto xd = x.to(torch::kDouble), wd = w.to(torch::kDouble), bd = b.to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(crnn::kernels::linear(xd, wd, bd), torch::matmul(xd, wd.t()) + bd, 1e-12, 1e-12));
}

// Its gradients, over more rows than one bf16 chunk (the linear converts and
// multiplies in row chunks so that bf16 keeps no full-size copy): dx row by
// row as bf16(g)·bf16(W) rounded once to bf16; dW = Σ bf16(g)ᵀ·bf16(x) within
// one bf16 rounding of the sum of |terms| (however the rows are chunked);
// db = Σ g in fp32. The reference is computed in double from rounded operands.
TEST(Precision, LinearGradientsAreBf16ProductsOverAnyNumberOfRows) {
  SKIP_WITHOUT_BF16();
  torch::manual_seed(6);
  auto x = torch::randn({3, 1100, 1030}).requires_grad_(true);  // 3300 rows of 1030: two chunks
  auto w = torch::randn({24, 1030}).requires_grad_(true), b = torch::randn({24}).requires_grad_(true);
  auto g = torch::randn({3, 1100, 24});
  {
    PrecisionGuard guard(Precision::bf16);
    auto y = crnn::kernels::linear(x, w, b);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{3, 1100, 24}));
    y.backward(g);
  }
  auto round = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); };
  const auto g2 = g.reshape({-1, 24}), x2 = x.detach().reshape({-1, 1030});
  const auto dx_exact = torch::matmul(round(g2), round(w.detach()));
  const auto dx_err = (x.grad().reshape({-1, 1030}).to(torch::kDouble) - dx_exact).abs();
  const auto dx_bound = dx_exact.abs() * std::pow(2.0, -8) + 1e-5;
  EXPECT_TRUE((dx_err <= dx_bound).all().item<bool>()) << "dx worst excess " << (dx_err - dx_bound).max().item<double>();
  const auto dw_exact = torch::matmul(round(g2).t(), round(x2));
  const auto dw_terms = torch::matmul(round(g2).abs().t(), round(x2).abs());
  const auto dw_err = (w.grad().to(torch::kDouble) - dw_exact).abs();
  EXPECT_TRUE((dw_err <= dw_terms * std::pow(2.0, -8) + 1e-4).all().item<bool>())
      << "dW worst error " << dw_err.max().item<double>();
  EXPECT_TRUE(torch::allclose(b.grad(), g2.sum(0), 1e-4, 1e-4));
  // A product of many rows really went through bf16 (not a silent fp32 path).
  EXPECT_GT((x.grad().reshape({-1, 1030}) - torch::matmul(g2, w.detach())).abs().max().item<double>(), 1e-4);
}

// The batched product (position-specific input weights, extended CLSTM): the
// same contract per batch entry, gradients included; the bias is broadcast
// and its gradient summed back to its shape.
TEST(Precision, BaddbmmIsBf16OperandsWithWideAccumulation) {
  SKIP_WITHOUT_BF16();
  torch::manual_seed(7);
  auto a = torch::randn({5, 300, 26}).requires_grad_(true), bm = torch::randn({5, 26, 40}).requires_grad_(true);
  auto bias = torch::randn({5, 1, 40}).requires_grad_(true);
  auto g = torch::randn({5, 300, 40});
  torch::Tensor y;
  {
    PrecisionGuard guard(Precision::bf16);
    y = crnn::kernels::baddbmm(bias, a, bm);
    y.backward(g);
  }
  auto round = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); };
  auto check = [&](const torch::Tensor& got, const torch::Tensor& exact, const char* what) {
    const auto err = (got.to(torch::kDouble) - exact).abs();
    const auto bound = exact.abs() * std::pow(2.0, -8) + 1e-4;
    EXPECT_TRUE((err <= bound).all().item<bool>()) << what << " worst excess " << (err - bound).max().item<double>();
  };
  check(y.detach() - bias.detach(), torch::bmm(round(a.detach()), round(bm.detach())), "output");
  check(a.grad(), torch::bmm(round(g), round(bm.detach()).transpose(1, 2)), "d batch1");
  check(bm.grad(), torch::bmm(round(a.detach()).transpose(1, 2), round(g)), "d batch2");
  EXPECT_TRUE(torch::allclose(bias.grad(), g.sum(1, /*keepdim=*/true), 1e-4, 1e-4));
}

class Bf16ConvRecurrent : public ::testing::TestWithParam<Combo> {};

// Small (one block) and large (parallel row blocks) ragged batches.
TEST_P(Bf16ConvRecurrent, OutputsAndGradientsNearFp32) {
  SKIP_WITHOUT_BF16();
  const auto& c = GetParam();
  for (int64_t batch : {3, 5}) {
    const int64_t frames = batch == 3 ? 9 : 260;
    auto opts = ConvRecurrentOptions(6, 8).kind(c.kind).source(c.source).combine(c.combine).reduce(c.reduce)
                    .extended(c.extended).window(5).shift(2);  // no max pooling: see kLayerTol
    torch::manual_seed(4);
    ConvRecurrent layer(opts);
    auto x = torch::randn({batch, frames, 6});
    auto lengths = batch == 3 ? torch::tensor({9, 6, 5}, torch::kLong)
                              : torch::tensor({260, 199, 37, 5, 5}, torch::kLong);
    compare_precisions(*layer, x, [&](const torch::Tensor& xi) { return layer(PaddedSequence{xi, lengths}).data; },
                       "batch " + std::to_string(batch), kLayerTol,
                       c.reduce == WindowReduce::max ? kMaxReduceGradTol : kLayerTol);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, Bf16ConvRecurrent, ::testing::ValuesIn(all_combos()), combo_name);

TEST(Bf16PeepholeLSTM, OutputsAndGradientsNearFp32) {
  SKIP_WITHOUT_BF16();
  for (bool bidirectional : {false, true})
    for (int64_t batch : {4, 300}) {  // one block with the threaded GEMM; parallel row blocks
      torch::manual_seed(6);
      PeepholeLSTM lstm(PeepholeLSTMOptions(7, 16).bidirectional(bidirectional));
      auto x = torch::randn({batch, 12, 7});
      auto lengths = torch::randint(1, 13, {batch}, torch::kLong);
      lengths[0] = 12;
      compare_precisions(*lstm, x, [&](const torch::Tensor& xi) { return lstm(PaddedSequence{xi, lengths}).data; },
                         std::string(bidirectional ? "BLSTM" : "LSTM") + " batch " + std::to_string(batch), kLayerTol);
    }
}

TEST(Bf16WindowConv, OutputsAndGradientsNearFp32) {
  SKIP_WITHOUT_BF16();
  torch::manual_seed(7);
  WindowConv conv(WindowConvOptions(6, 10).window(5).shift(2).pool(2).pool_shift(2));
  auto x = torch::randn({3, 40, 6});
  auto lengths = torch::tensor({40, 17, 9}, torch::kLong);
  compare_precisions(*conv, x, [&](const torch::Tensor& xi) { return conv(PaddedSequence{xi, lengths}).data; },
                     "conv", kLayerTol);
}

TEST(Bf16SequenceClassifier, EveryPresetNearFp32AndDeterministic) {
  SKIP_WITHOUT_BF16();
  for (const auto& name : SequenceClassifierOptions::preset_names()) {
    auto o = SequenceClassifierOptions::preset(name, 4, 10);
    o.recurrent_size(24).dense_size(32);
    torch::manual_seed(8);
    SequenceClassifier net(o);
    auto x = torch::randn({4, 60, 10});
    auto lengths = torch::tensor({60, 41, 33, 20}, torch::kLong);
    auto run = [&](const torch::Tensor& xi) { return net->forward(PaddedSequence{xi, lengths}); };
    compare_precisions(*net, x, run, name, kModelTol);
    // A fixed thread count gives the same bits every time.
    const auto a = run_in(Precision::bf16, *net, x, run), b = run_in(Precision::bf16, *net, x, run);
    EXPECT_TRUE(torch::equal(a.out, b.out)) << name << ": bf16 output not deterministic";
    for (size_t i = 0; i < a.grads.size(); ++i)
      EXPECT_TRUE(torch::equal(a.grads[i], b.grads[i])) << name << ": bf16 gradient " << i << " not deterministic";
  }
}

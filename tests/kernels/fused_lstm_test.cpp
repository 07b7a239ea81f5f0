// The fused CPU kernels against the composed reference path: outputs and
// gradients (input and every parameter) in float32 for every kind / source /
// reduce / extended / direction combination and ragged batches, small batches
// (one block, multi-threaded GEMM) and large ones (parallel row blocks), plus
// double-precision finite-difference checks of the scan itself.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>

#include "crnn/kernels/fused_lstm.h"
#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/sequence_classifier.h"
#include "nn/combos.h"
#include "nn/gradcheck.h"

using namespace crnn::nn;
using crnn::testing::expect_gradients_match;
using crnn::testing::Combo;
using crnn::testing::all_combos;
using crnn::testing::combo_name;

namespace {

/// Gradients of a fixed random weighting of the output with respect to the
/// input and every parameter, in the module's parameter order.
std::vector<torch::Tensor> gradients(torch::nn::Module& m, const torch::Tensor& x,
                                     const torch::Tensor& y) {
  m.zero_grad();
  if (x.grad().defined()) x.mutable_grad().zero_();
  auto gen = at::detail::createCPUGenerator(99);
  auto w = torch::randn(y.sizes(), gen, y.options().requires_grad(false));
  (y * w).sum().backward();
  std::vector<torch::Tensor> g{x.grad().clone()};
  for (auto& p : m.parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return g;
}

/// Float32 agreement: differences from summation order only.
void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_LE(diff, 2e-5 * scale) << what << ": max |fused − composed| = " << diff
                                << " (scale " << scale << ")";
}

void compare_conv_recurrent(const ConvRecurrentOptions& base, const torch::Tensor& x_in,
                            const torch::Tensor& lengths, const std::string& label) {
  torch::manual_seed(21);
  ConvRecurrent composed(ConvRecurrentOptions(base).impl(Implementation::composed));
  torch::manual_seed(21);
  ConvRecurrent fused(ConvRecurrentOptions(base).impl(Implementation::fused));
  auto xc = x_in.clone().requires_grad_(true);
  auto xf = x_in.clone().requires_grad_(true);
  auto yc = composed(PaddedSequence{xc, lengths});
  auto yf = fused(PaddedSequence{xf, lengths});
  ASSERT_TRUE(torch::equal(yc.lengths, yf.lengths)) << label;
  expect_close(yf.data, yc.data, label + " output");
  auto gc = gradients(*composed, xc, yc.data);
  auto gf = gradients(*fused, xf, yf.data);
  auto names = composed->named_parameters();
  ASSERT_EQ(gc.size(), gf.size());
  for (size_t i = 0; i < gc.size(); ++i)
    expect_close(gf[i], gc[i], label + " gradient of " + (i == 0 ? std::string("input") : names[i - 1].key()));
}

}  // namespace

class FusedConvRecurrent : public ::testing::TestWithParam<Combo> {};

// Small ragged batch: fewer windows than a parallel block, so the scan runs as
// one block with the multi-threaded GEMM.
TEST_P(FusedConvRecurrent, MatchesComposedSmallRaggedBatch) {
  const auto& c = GetParam();
  auto opts = ConvRecurrentOptions(3, 4).kind(c.kind).source(c.source).combine(c.combine)
                  .reduce(c.reduce).extended(c.extended).window(3).shift(2).pool(2).pool_shift(1);
  torch::manual_seed(3);
  auto x = torch::randn({3, 9, 3});
  auto lengths = torch::tensor({9, 4, 2}, torch::kLong);
  x[1].narrow(0, 4, 5).fill_(NAN);  // padding never leaks
  compare_conv_recurrent(opts, x, lengths, "small");
}

// Large ragged batch: hundreds of windows, so the scan runs in parallel row
// blocks with single-threaded GEMMs; overlapping (r2 < r1) and disjoint windows.
TEST_P(FusedConvRecurrent, MatchesComposedLargeRaggedBatch) {
  const auto& c = GetParam();
  for (int64_t shift : {2, 5}) {
    auto opts = ConvRecurrentOptions(6, 8).kind(c.kind).source(c.source).combine(c.combine)
                    .reduce(c.reduce).extended(c.extended).window(5).shift(shift).pool(2).pool_shift(2);
    torch::manual_seed(4);
    auto x = torch::randn({5, 260, 6});
    auto lengths = torch::tensor({260, 199, 37, 5, 3}, torch::kLong);
    compare_conv_recurrent(opts, x, lengths, "large, shift " + std::to_string(shift));
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, FusedConvRecurrent, ::testing::ValuesIn(all_combos()),
                         combo_name);

// The parallel row blocks really run on several threads (crnn is compiled
// with OpenMP: without it at::parallel_for is a serial loop), and the result
// does not depend on the thread count: the block split depends on the number
// of sequences only, so 1 and 2 threads agree bit for bit, forward and backward.
TEST(RecurrentScan, ParallelBlocksUseSeveralThreadsAndMatchOneThread) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::atomic<int> in_parallel{0};
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { in_parallel += at::in_parallel_region() ? 1 : 0; });
  EXPECT_EQ(in_parallel.load(), 2) << "at::parallel_for ran serially: crnn built without OpenMP?";
  auto run = [](int threads) {
    at::set_num_threads(threads);
    torch::manual_seed(8);
    ConvRecurrent layer(ConvRecurrentOptions(6, 8).window(5).shift(2).pool(2).pool_shift(2));
    auto x = torch::randn({6, 300, 6}).requires_grad_(true);
    auto lengths = torch::tensor({300, 280, 170, 90, 40, 7}, torch::kLong);
    auto y = layer(PaddedSequence{x, lengths});
    auto g = gradients(*layer, x, y.data);
    g.insert(g.begin(), y.data.detach().clone());
    return g;
  };
  auto one = run(1), two = run(2);
  at::set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i])) << "tensor " << i;
}

TEST(FusedPeepholeLSTM, MatchesComposedRaggedUniAndBidirectional) {
  for (bool bidirectional : {false, true})
    for (bool peepholes : {true, false})
      for (int64_t batch : {4, 300}) {  // one block / parallel blocks
        const std::string label = std::string(bidirectional ? "blstm" : "lstm") +
                                  (peepholes ? "" : " no peepholes") + " batch " +
                                  std::to_string(batch);
        auto opts = PeepholeLSTMOptions(5, 7).bidirectional(bidirectional).peepholes(peepholes);
        torch::manual_seed(8);
        PeepholeLSTM composed(PeepholeLSTMOptions(opts).impl(Implementation::composed));
        torch::manual_seed(8);
        PeepholeLSTM fused(PeepholeLSTMOptions(opts).impl(Implementation::fused));
        auto x = torch::randn({batch, 11, 5});
        auto lengths = torch::randint(1, 12, {batch}, torch::kLong);
        lengths[0] = 11;
        auto xc = x.clone().requires_grad_(true), xf = x.clone().requires_grad_(true);
        auto sc = composed->forward_states(xc, lengths);
        auto sf = fused->forward_states(xf, lengths);
        expect_close(sf.hidden, sc.hidden, label + " hidden");
        expect_close(sf.cell, sc.cell, label + " cell");
        auto gc = gradients(*composed, xc, sc.hidden + 0.5 * sc.cell);
        auto gf = gradients(*fused, xf, sf.hidden + 0.5 * sf.cell);
        for (size_t i = 0; i < gc.size(); ++i) expect_close(gf[i], gc[i], label + " gradient " + std::to_string(i));
      }
}

// A NaN in a real (not padding) frame reaches exactly the outputs it reaches
// on the composed path, as in plain LibTorch: it must not come out as a
// finite, confident-looking number (the fused clamp once turned NaN into ±87).
TEST(FusedPeepholeLSTM, NaNInAFrameReachesTheSameOutputsAsComposed) {
  for (bool bidirectional : {false, true})
    for (int64_t batch : {4, 300}) {
      const std::string label = std::string(bidirectional ? "blstm" : "lstm") + " batch " + std::to_string(batch);
      auto opts = PeepholeLSTMOptions(5, 7).bidirectional(bidirectional);
      torch::manual_seed(8);
      PeepholeLSTM composed(PeepholeLSTMOptions(opts).impl(Implementation::composed));
      torch::manual_seed(8);
      PeepholeLSTM fused(PeepholeLSTMOptions(opts).impl(Implementation::fused));
      torch::NoGradGuard no_grad;
      auto x = torch::randn({batch, 11, 5});
      auto lengths = torch::full({batch}, 11, torch::kLong);
      x[0][3][2] = NAN;
      x[batch - 1][10][0] = INFINITY;
      const auto nan_c = torch::isnan(composed->forward_states(x, lengths).hidden);
      const auto nan_f = torch::isnan(fused->forward_states(x, lengths).hidden);
      EXPECT_GT(nan_c.sum().item<int64_t>(), 0) << label;
      EXPECT_TRUE(torch::equal(nan_f, nan_c)) << label << ": " << nan_f.sum().item<int64_t>() << " NaN fused, "
                                              << nan_c.sum().item<int64_t>() << " composed";
    }
  for (const auto& c : crnn::testing::all_combos()) {
    auto opts = ConvRecurrentOptions(6, 4).kind(c.kind).source(c.source).combine(c.combine).reduce(c.reduce)
                    .extended(c.extended).window(3).shift(2).pool(2).pool_shift(1);
    torch::manual_seed(3);
    ConvRecurrent composed(ConvRecurrentOptions(opts).impl(Implementation::composed));
    torch::manual_seed(3);
    ConvRecurrent fused(ConvRecurrentOptions(opts).impl(Implementation::fused));
    torch::NoGradGuard no_grad;
    auto x = torch::randn({2, 30, 6});
    x[0][7][3] = NAN;
    const auto lengths = torch::tensor({30, 30}, torch::kLong);
    const auto nan_c = torch::isnan(composed(PaddedSequence{x, lengths}).data);
    const auto nan_f = torch::isnan(fused(PaddedSequence{x, lengths}).data);
    EXPECT_GT(nan_c.sum().item<int64_t>(), 0) << combo_name({c, 0});
    EXPECT_TRUE(torch::equal(nan_f, nan_c)) << combo_name({c, 0}) << ": " << nan_f.sum().item<int64_t>()
                                            << " NaN fused, " << nan_c.sum().item<int64_t>() << " composed";
  }
}

// Saturated gates and a cell state that grows far past ±43 (long sequences,
// large inputs) must stay finite: tanh(c) of such a c is ±1, not NaN.
TEST(FusedPeepholeLSTM, SaturatedGatesAndLargeCellStatesStayFinite) {
  torch::manual_seed(9);
  auto opts = PeepholeLSTMOptions(3, 4);
  PeepholeLSTM composed(PeepholeLSTMOptions(opts).impl(Implementation::composed));
  torch::manual_seed(9);
  PeepholeLSTM fused(PeepholeLSTMOptions(opts).impl(Implementation::fused));
  {
    torch::NoGradGuard g;
    for (auto* m : {&composed, &fused}) {
      auto p = (*m)->direction(0);
      p.bias.fill_(0);
      p.bias.narrow(0, 0, 8).fill_(60);    // input and forget gates fully open
      p.bias.narrow(0, 8, 4).fill_(-60);   // candidate −1: c falls by ~1 every step
      p.bias.narrow(0, 12, 4).fill_(-200); // output gate argument far below −87
    }
  }
  auto x = torch::randn({2, 120, 3}) * 100;
  auto lengths = torch::tensor({120, 77}, torch::kLong);
  auto sc = composed->forward_states(x, lengths);
  auto sf = fused->forward_states(x, lengths);
  ASSERT_LT(sc.cell.min().item<float>(), -60.0f);  // the regime that produced NaN
  EXPECT_TRUE(torch::isfinite(sf.hidden).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(sf.cell).all().item<bool>());
  EXPECT_TRUE(torch::allclose(sf.hidden, sc.hidden, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(sf.cell, sc.cell, 1e-4, 1e-3));
}

TEST(FusedPeepholeLSTM, MatchesComposedPositionSpecific) {
  for (bool bidirectional : {false, true}) {
    auto opts = PeepholeLSTMOptions(3, 4).bidirectional(bidirectional).positions(6);
    torch::manual_seed(9);
    PeepholeLSTM composed(PeepholeLSTMOptions(opts).impl(Implementation::composed));
    torch::manual_seed(9);
    PeepholeLSTM fused(PeepholeLSTMOptions(opts).impl(Implementation::fused));
    auto x = torch::randn({10, 6, 3});
    auto xc = x.clone().requires_grad_(true), xf = x.clone().requires_grad_(true);
    auto sc = composed->forward_states(xc);
    auto sf = fused->forward_states(xf);
    expect_close(sf.cell, sc.cell, "cell");
    auto gc = gradients(*composed, xc, sc.cell - sc.hidden);
    auto gf = gradients(*fused, xf, sf.cell - sf.hidden);
    for (size_t i = 0; i < gc.size(); ++i) expect_close(gf[i], gc[i], "gradient " + std::to_string(i));
  }
}

// The whole paper model both ways: loss and every parameter's gradient.
TEST(FusedSequenceClassifier, PresetsMatchComposed) {
  for (const std::string name : {"emotion-clstm", "emotion-eclstm", "agender-clstm", "agender-cblstm"}) {
    auto opts = SequenceClassifierOptions::preset(name, 4, 6).recurrent_size(16).dense_size(12);
    auto fe = opts.front_end();
    for (auto& l : fe) l.features(l.kind() == RecurrentKind::blstm ? 10 : 8).hidden_size(l.kind() == RecurrentKind::blstm ? 5 : 0);
    opts.front_end(fe);
    auto build = [&](Implementation impl) {
      auto o = opts;
      o.impl(impl);
      auto f = o.front_end();
      for (auto& l : f) l.impl(impl);
      o.front_end(f);
      torch::manual_seed(13);
      return SequenceClassifier(o);
    };
    auto composed = build(Implementation::composed);
    auto fused = build(Implementation::fused);
    torch::manual_seed(14);
    auto x = torch::randn({6, 90, 6});
    auto lengths = torch::tensor({90, 80, 41, 23, 9, 3}, torch::kLong);
    auto labels = torch::tensor({0, 1, 2, 3, 0, 1}, torch::kLong);
    auto lc = torch::nll_loss(composed(PaddedSequence{x, lengths}), labels);
    auto lf = torch::nll_loss(fused(PaddedSequence{x, lengths}), labels);
    EXPECT_NEAR(lf.item<double>(), lc.item<double>(), 1e-5) << name;
    composed->zero_grad();
    fused->zero_grad();
    lc.backward();
    lf.backward();
    auto pc = composed->named_parameters(), pf = fused->named_parameters();
    for (auto& p : pc) expect_close(pf[p.key()].grad(), p.value().grad(), name + " " + p.key());
  }
}

// Double-precision finite differences of the scan itself, every cell and
// reduction, with shared rows (overlapping windows), in both blockings.
TEST(RecurrentScan, GradientsMatchFiniteDifferences) {
  using namespace crnn::kernels;
  for (auto cell : {Cell::lstm, Cell::rnn})
    for (auto reduce : {Reduce::none, Reduce::max, Reduce::mean, Reduce::step})
      for (int64_t n : {3, 260}) {
        if (cell == Cell::rnn && reduce == Reduce::none && n > 3) continue;
        torch::manual_seed(5);
        const int64_t m = 3, steps = 4, g = cell == Cell::lstm ? 4 : 1;
        // Sequence i, step t reads row i + t: neighbours share rows.
        auto index = (torch::arange(steps).unsqueeze(1) + torch::arange(n).unsqueeze(0)).contiguous();
        auto proj = torch::randn({n + steps, g * m}, torch::kDouble).requires_grad_(true);
        auto whh = (0.5 * torch::randn({g * m, m}, torch::kDouble)).requires_grad_(true);
        auto peep = torch::randn({3, m}, torch::kDouble).requires_grad_(true);
        ScanOptions so;
        so.cell = cell;
        so.reduce = reduce;
        so.reduce_cell = cell == Cell::lstm && reduce == Reduce::max;
        so.step = 1;
        auto loss = [&] {
          auto out = recurrent_scan(proj, index, whh, peep, so);
          auto y = out[0];
          if (out.size() > 1) y = y + 0.7 * out[1];
          return crnn::testing::weighted_sum(y);
        };
        std::vector<std::pair<std::string, torch::Tensor>> ts{{"proj", proj}, {"weight_hh", whh}};
        if (cell == Cell::lstm) ts.emplace_back("peepholes", peep);
        SCOPED_TRACE("cell " + std::to_string(static_cast<int>(cell)) + " reduce " +
                     std::to_string(static_cast<int>(reduce)) + " n " + std::to_string(n));
        expect_gradients_match(loss, ts, 1e-6, 1e-7, 1e-5, 16);
      }
}

TEST(RecurrentScan, InferenceWithoutAutogradMatchesTraining) {
  using namespace crnn::kernels;
  torch::manual_seed(6);
  auto index = torch::arange(600).reshape({5, 120}).contiguous();
  auto proj = torch::randn({600, 16});
  auto whh = torch::randn({16, 4}) * 0.3;
  auto peep = torch::randn({3, 4});
  for (auto reduce : {Reduce::max, Reduce::mean, Reduce::step}) {
    ScanOptions so{Cell::lstm, reduce, true, 2};
    auto a = recurrent_scan(proj.requires_grad_(true), index, whh, peep, so)[0];
    torch::Tensor b;
    {
      torch::NoGradGuard g;
      b = recurrent_scan(proj, index, whh, peep, so)[0];
    }
    EXPECT_TRUE(torch::allclose(a.detach(), b)) << static_cast<int>(reduce);
    proj = proj.detach();
  }
}

TEST(RecurrentScan, RejectsBadArguments) {
  using namespace crnn::kernels;
  auto proj = torch::randn({10, 8});
  auto whh = torch::randn({8, 2});
  auto index = torch::zeros({3, 4}, torch::kLong);
  EXPECT_THROW(recurrent_scan(proj, index + 10, whh, {}, {}), c10::Error);
  EXPECT_THROW(recurrent_scan(proj, index, torch::randn({8, 3}), {}, {}), c10::Error);
  ScanOptions so;
  so.reduce = Reduce::step;
  so.step = 3;
  EXPECT_THROW(recurrent_scan(proj, index, whh, {}, so), c10::Error);
}

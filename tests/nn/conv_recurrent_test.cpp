#include <gtest/gtest.h>
#include <torch/torch.h>

#include "crnn/nn/conv_recurrent.h"
#include "nn/combos.h"
#include "nn/gradcheck.h"

using namespace crnn::nn;
using crnn::testing::expect_gradients_match;
using crnn::testing::weighted_sum;
using crnn::testing::Combo;
using crnn::testing::all_combos;
using crnn::testing::combo_name;

namespace {

ConvRecurrentOptions small_options(const Combo& c) {
  // k = 3, n = 4; blstm with hidden/cell has m = 2 per direction.
  return ConvRecurrentOptions(3, 4)
      .kind(c.kind)
      .source(c.source)
      .combine(c.combine)
      .reduce(c.reduce)
      .extended(c.extended)
      .window(3)
      .shift(2)
      .pool(2)
      .pool_shift(1);
}

std::vector<std::pair<std::string, torch::Tensor>> named(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

}  // namespace

class ConvRecurrentCombo : public ::testing::TestWithParam<Combo> {};

TEST_P(ConvRecurrentCombo, GradientsMatchFiniteDifferences) {
  torch::manual_seed(11);
  ConvRecurrent layer(small_options(GetParam()));
  layer->to(torch::kDouble);
  // Ragged: 9 frames → 4 windows → 3 pooled; 4 frames → 1 window; 2 frames (< r1) → 1.
  auto x = torch::randn({3, 9, 3}, torch::kDouble).requires_grad_(true);
  auto lengths = torch::tensor({9, 4, 2}, torch::kLong);
  auto tensors = named(*layer);
  tensors.emplace_back("input", x);
  expect_gradients_match([&] { return weighted_sum(layer(PaddedSequence{x, lengths}).data); },
                         tensors);
}

// A padded batch gives each sequence's outputs and gradients as if run alone.
TEST_P(ConvRecurrentCombo, RaggedBatchEqualsEachSequenceAlone) {
  torch::manual_seed(12);
  ConvRecurrent layer(small_options(GetParam()));
  layer->to(torch::kDouble);
  const std::vector<int64_t> lens{9, 4, 2};
  auto x = torch::randn({3, 9, 3}, torch::kDouble);
  for (int b = 1; b < 3; ++b) x[b].narrow(0, lens[b], 9 - lens[b]).fill_(NAN);
  x.requires_grad_(true);
  auto y = layer(PaddedSequence{x, torch::tensor(lens, torch::kLong)});
  EXPECT_TRUE(torch::equal(y.lengths, torch::tensor({3, 1, 1}, torch::kLong)));
  ASSERT_FALSE(y.data.isnan().any().item<bool>());
  auto w = torch::randn(y.data.sizes(), torch::kDouble);
  layer->zero_grad();
  (y.data * w).sum().backward();
  auto x_grad = x.grad().clone();
  std::vector<torch::Tensor> batch_grads, sum_grads;
  for (auto& p : layer->parameters()) batch_grads.push_back(p.grad().clone());
  for (int b = 0; b < 3; ++b) {
    auto xb = x[b].narrow(0, 0, lens[b]).detach().unsqueeze(0).requires_grad_(true);
    layer->zero_grad();
    auto yb = layer(PaddedSequence{xb, torch::tensor({lens[b]}, torch::kLong)});
    const int64_t lb = yb.lengths[0].item<int64_t>();
    EXPECT_TRUE(torch::allclose(yb.data[0], y.data[b].narrow(0, 0, lb), 1e-12, 1e-12)) << b;
    (yb.data[0] * w[b].narrow(0, 0, lb)).sum().backward();
    EXPECT_TRUE(torch::allclose(xb.grad()[0], x_grad[b].narrow(0, 0, lens[b]), 1e-12, 1e-12)) << b;
    auto params = layer->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (b == 0) sum_grads.push_back(params[i].grad().clone());
      else sum_grads[i] += params[i].grad();
    }
  }
  for (size_t i = 0; i < sum_grads.size(); ++i)
    EXPECT_TRUE(torch::allclose(sum_grads[i], batch_grads[i], 1e-10, 1e-12)) << i;
  EXPECT_EQ(x_grad[1].narrow(0, 4, 5).abs().sum().item<double>(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, ConvRecurrentCombo, ::testing::ValuesIn(all_combos()),
                         combo_name);

// One window of a tiny CLSTM, worked by hand: k = 2, n = m = 1, r1 = 2, source
// hidden (and cell), reduce last, no pooling. Gate order i, f, c, o.
//   W_x = [[1, 0], [0, 1], [1, 1], [0, 0]], W_h = [0, 0, 0.5, 1], b = 0,
//   peepholes w_ci = 0.5, w_cf = −0.5, w_co = 1; window x_1 = [1, 0], x_2 = [0, 1].
// Step 1 (h_0 = c_0 = 0):
//   i_1 = σ(1) = 0.7310585786,  f_1 = σ(0) = 0.5,  tanh(1) = 0.7615941560
//   c_1 = 0.5·0 + 0.7310585786·0.7615941560 = 0.5567699411
//   o_1 = σ(0 + 1·c_1) = σ(0.5567699411) = 0.6357048381
//   h_1 = 0.6357048381·tanh(0.5567699411) = 0.3213977014
// Step 2:
//   i_2 = σ(0 + 0·h_1 + 0.5·c_1) = σ(0.2783849706) = 0.5691502336
//   f_2 = σ(1 + 0·h_1 − 0.5·c_1) = σ(0.7216150294) = 0.6729625584
//   g_2 = tanh(1 + 0.5·h_1) = tanh(1.1606988507) = 0.8212675016
//   c_2 = 0.6729625584·0.5567699411 + 0.5691502336·0.8212675016 = 0.8421099144
//   o_2 = σ(0 + 1·h_1 + 1·c_2) = σ(1.1635076158) = 0.7619694826
//   h_2 = 0.7619694826·tanh(0.8421099144) = 0.5234158834
TEST(ConvRecurrent, HandWorkedTinyCLSTM) {
  for (auto source : {FeatureSource::hidden, FeatureSource::cell}) {
    ConvRecurrent layer(ConvRecurrentOptions(2, 1).kind(RecurrentKind::lstm).source(source)
                            .reduce(WindowReduce::last).window(2).shift(1));
    {
      torch::NoGradGuard g;
      auto p = layer->lstm->direction(0);
      p.weight_ih.copy_(torch::tensor({{1., 0.}, {0., 1.}, {1., 1.}, {0., 0.}}));
      p.weight_hh.copy_(torch::tensor({{0.}, {0.}, {0.5}, {1.}}));
      p.bias.zero_();
      p.peephole_i.fill_(0.5);
      p.peephole_f.fill_(-0.5);
      p.peephole_o.fill_(1.0);
    }
    auto x = torch::tensor({{{1.f, 0.f}, {0.f, 1.f}}});
    auto y = layer(PaddedSequence{x, torch::tensor({2}, torch::kLong)});
    ASSERT_EQ(y.data.sizes(), (std::vector<int64_t>{1, 1, 1}));
    const double expected = source == FeatureSource::hidden ? 0.5234158834 : 0.8421099144;
    EXPECT_NEAR(y.data.item<double>(), expected, 1e-6) << to_string(source);
  }
}

// reduce = last with r1 = L, r2 = 1 is one window over the whole sequence: the
// LSTM's last hidden (or cell) state.
TEST(ConvRecurrent, LastOfOneWholeWindowEqualsLSTMOverSequence) {
  torch::manual_seed(4);
  const int64_t L = 7;
  for (auto source : {FeatureSource::hidden, FeatureSource::cell}) {
    ConvRecurrent layer(ConvRecurrentOptions(3, 5).source(source).reduce(WindowReduce::last)
                            .window(L).shift(1));
    PeepholeLSTM lstm(3, 5);
    {
      torch::NoGradGuard g;
      auto a = layer->lstm->named_parameters(), b = lstm->named_parameters();
      for (auto& p : a) b[p.key()].copy_(p.value());
    }
    auto x = torch::randn({2, L, 3});
    auto y = layer(PaddedSequence{x, torch::full({2}, L, torch::kLong)});
    auto s = lstm->forward_states(x);
    auto ref = (source == FeatureSource::hidden ? s.hidden : s.cell).select(1, L - 1);
    ASSERT_EQ(y.data.sizes(), (std::vector<int64_t>{2, 1, 5}));
    EXPECT_TRUE(torch::allclose(y.data.squeeze(1), ref, 1e-6, 1e-7));
  }
}

// Extended CLSTM whose position copies are all equal is the plain CLSTM.
TEST(ConvRecurrent, ExtendedWithIdenticalPositionCopiesEqualsPlain) {
  for (auto kind : {RecurrentKind::lstm, RecurrentKind::blstm}) {
    torch::manual_seed(5);
    auto opts = ConvRecurrentOptions(3, 4).kind(kind).source(FeatureSource::cell)
                    .reduce(WindowReduce::max).window(3).shift(2).pool(2).pool_shift(2);
    ConvRecurrent plain(opts);
    ConvRecurrent extended(ConvRecurrentOptions(opts).extended(true));
    {
      torch::NoGradGuard g;
      auto src = plain->named_parameters(true);
      for (auto& p : extended->named_parameters(true)) {
        auto& from = src[p.key()];
        if (p.value().dim() == 3) p.value().copy_(from.unsqueeze(0).expand_as(p.value()));
        else p.value().copy_(from);
      }
    }
    auto x = torch::randn({2, 12, 3});
    PaddedSequence in{x, torch::tensor({12, 6}, torch::kLong)};
    EXPECT_TRUE(torch::allclose(plain(in).data, extended(in).data, 1e-6, 1e-7)) << to_string(kind);
  }
}

// Position-specific weights are really used by position: changing only the
// copy for the last position changes a reduce=last output.
TEST(ConvRecurrent, ExtendedUsesPositionSpecificWeights) {
  torch::manual_seed(6);
  ConvRecurrent layer(ConvRecurrentOptions(3, 4).extended(true).window(3).shift(3));
  auto in = PaddedSequence{torch::randn({1, 6, 3}), torch::tensor({6}, torch::kLong)};
  auto before = layer(in).data.clone();
  {
    torch::NoGradGuard g;
    layer->lstm->direction(0).weight_ih[2].add_(0.5);
  }
  EXPECT_FALSE(torch::allclose(before, layer(in).data));
}

TEST(ConvRecurrent, OutputLengthsFollowWindowingAndPooling) {
  ConvRecurrent layer(ConvRecurrentOptions(2, 3).window(5).shift(2).pool(2).pool_shift(2));
  auto lengths = torch::tensor({300, 11, 5, 3}, torch::kLong);
  auto y = layer(PaddedSequence{torch::randn({4, 300, 2}), lengths});
  // 300 → 148 windows → 74; 11 → 4 → 2; 5 → 1 → 1; 3 (< r1) → 1 → 1.
  EXPECT_TRUE(torch::equal(y.lengths, torch::tensor({74, 2, 1, 1}, torch::kLong)));
  EXPECT_EQ(y.data.size(1), 74);
  EXPECT_EQ(y.data.size(2), 3);
}

namespace {
void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing: " << fragment;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(ConvRecurrent, InvalidOptionsRaiseClearErrors) {
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).window(0)); }, "window (r1) must be in 1..1048576, got 0");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).shift(0)); }, "shift (r2) must be in 1..1048576, got 0");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).pool(0)); }, "pool (p1) must be in 1..1048576, got 0");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).pool(99999999999)); },
               "pool (p1) must be in 1..1048576, got 99999999999");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 70000)); }, "features (n) must be in 1..65536, got 70000");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).pool_shift(-1)); }, "pool_shift (p2) must be in 1..1048576, got -1");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).kind(RecurrentKind::rnn).source(FeatureSource::cell)); },
               "source=cell needs an LSTM kind");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).kind(RecurrentKind::rnn).extended(true)); },
               "extended (position-specific input weights) is defined for lstm and blstm only");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 5).kind(RecurrentKind::blstm)); }, "must be even");
  expect_error([] { ConvRecurrent(ConvRecurrentOptions(3, 4).hidden_size(8)); }, "recurrent size is fixed by n");
  expect_error(
      [] {
        ConvRecurrent l(ConvRecurrentOptions(3, 4));
        l(PaddedSequence{torch::randn({1, 8, 5}), torch::tensor({8}, torch::kLong)});
      },
      "input has 5 features per frame but the layer was built for input_size=3");
  // A free recurrent size is fine with source=output.
  EXPECT_NO_THROW(ConvRecurrent(ConvRecurrentOptions(3, 4).hidden_size(8).source(FeatureSource::output)));
}

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "crnn/nn/peephole_lstm.h"
#include "nn/gradcheck.h"

using namespace crnn::nn;
using crnn::testing::expect_gradients_match;
using crnn::testing::weighted_sum;

namespace {
std::vector<std::pair<std::string, torch::Tensor>> named(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}
}  // namespace

// With peepholes disabled the layer is the standard LSTM: torch::nn::LSTM with
// the same weights is an independent reference (bias = bias_ih + bias_hh).
TEST(PeepholeLSTM, WithoutPeepholesEqualsTorchLSTM) {
  for (bool bi : {false, true}) {
    torch::manual_seed(1);
    PeepholeLSTM ours(PeepholeLSTMOptions(5, 7).peepholes(false).bidirectional(bi));
    torch::nn::LSTM ref(torch::nn::LSTMOptions(5, 7).batch_first(true).bidirectional(bi));
    {
      torch::NoGradGuard g;
      for (int d = 0; d < (bi ? 2 : 1); ++d) {
        const std::string s = d ? "_reverse" : "";
        auto p = ours->direction(d);
        ref->named_parameters()["weight_ih_l0" + s].copy_(p.weight_ih);
        ref->named_parameters()["weight_hh_l0" + s].copy_(p.weight_hh);
        ref->named_parameters()["bias_ih_l0" + s].copy_(p.bias * 0.25);
        ref->named_parameters()["bias_hh_l0" + s].copy_(p.bias * 0.75);
      }
    }
    auto x = torch::randn({3, 9, 5});
    auto y = ours(PaddedSequence{x, torch::full({3}, 9, torch::kLong)});
    auto r = std::get<0>(ref->forward(x));
    EXPECT_TRUE(torch::allclose(y.data, r, 1e-5, 1e-6)) << "bidirectional=" << bi;
  }
}

// A ragged padded batch gives, for every sequence, the outputs and gradients of
// that sequence run alone — padding (here NaN) never leaks, and the backward
// direction starts at each sequence's own last frame.
TEST(PeepholeLSTM, RaggedBatchEqualsEachSequenceAlone) {
  for (bool bi : {false, true}) {
    torch::manual_seed(2);
    PeepholeLSTM lstm(PeepholeLSTMOptions(3, 4).bidirectional(bi));
    lstm->to(torch::kDouble);
    const std::vector<int64_t> lens{6, 3, 1};
    auto x = torch::randn({3, 6, 3}, torch::kDouble);
    for (int b = 0; b < 3; ++b)
      if (lens[b] < 6) x[b].narrow(0, lens[b], 6 - lens[b]).fill_(NAN);
    x.requires_grad_(true);
    auto y = lstm(PaddedSequence{x, torch::tensor(lens, torch::kLong)});
    ASSERT_FALSE(y.data.isnan().any().item<bool>());
    auto w = torch::randn(y.data.sizes(), torch::kDouble);
    lstm->zero_grad();
    (y.data * w).sum().backward();
    std::vector<torch::Tensor> batch_grads;
    for (auto& p : lstm->parameters()) batch_grads.push_back(p.grad().clone());
    auto x_grad = x.grad().clone();

    std::vector<torch::Tensor> sum_grads;
    for (int b = 0; b < 3; ++b) {
      auto xb = x[b].narrow(0, 0, lens[b]).detach().unsqueeze(0).requires_grad_(true);
      lstm->zero_grad();
      auto yb = lstm(PaddedSequence{xb, torch::tensor({lens[b]}, torch::kLong)});
      EXPECT_TRUE(torch::allclose(yb.data[0], y.data[b].narrow(0, 0, lens[b]), 1e-12, 1e-12));
      // Padding outputs are zero.
      if (lens[b] < 6) EXPECT_EQ(y.data[b].narrow(0, lens[b], 6 - lens[b]).abs().sum().item<double>(), 0);
      (yb.data[0] * w[b].narrow(0, 0, lens[b])).sum().backward();
      EXPECT_TRUE(torch::allclose(xb.grad()[0], x_grad[b].narrow(0, 0, lens[b]), 1e-12, 1e-12));
      auto params = lstm->parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        if (b == 0) sum_grads.push_back(params[i].grad().clone());
        else sum_grads[i] += params[i].grad();
      }
    }
    for (size_t i = 0; i < sum_grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(sum_grads[i], batch_grads[i], 1e-10, 1e-12)) << i;
    // Padding frames get exactly zero gradient.
    EXPECT_EQ(x_grad[1].narrow(0, 3, 3).abs().sum().item<double>(), 0);
  }
}

TEST(PeepholeLSTM, GradientsMatchFiniteDifferences) {
  for (bool bi : {false, true}) {
    for (bool peep : {true, false}) {
      torch::manual_seed(3);
      PeepholeLSTM lstm(PeepholeLSTMOptions(3, 4).bidirectional(bi).peepholes(peep));
      lstm->to(torch::kDouble);
      auto x = torch::randn({2, 5, 3}, torch::kDouble).requires_grad_(true);
      auto lengths = torch::tensor({5, 3}, torch::kLong);
      auto tensors = named(*lstm);
      tensors.emplace_back("input", x);
      SCOPED_TRACE("bidirectional=" + std::to_string(bi) + " peepholes=" + std::to_string(peep));
      expect_gradients_match([&] { return weighted_sum(lstm(PaddedSequence{x, lengths}).data); },
                             tensors);
    }
  }
}

TEST(PeepholeLSTM, RejectsBadInput) {
  PeepholeLSTM lstm(3, 4);
  try {
    lstm(PaddedSequence{torch::randn({2, 5, 6}), torch::tensor({5, 5}, torch::kLong)});
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input has 6 features per frame but the layer was built for input_size=3"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(PeepholeLSTM(0, 4), c10::Error);
  EXPECT_THROW(PeepholeLSTM(3, 0), c10::Error);
}

// Initialization (docs/layers.md): every parameter of the recurrent layers is
// U(−1/√m, 1/√m) (PyTorch's RNN rule), WindowConv's weight and bias are
// U(±1/√(k·r1)) (kaiming-uniform with a = √5 gives √(6 / (6·fan_in)) = 1/√fan_in),
// and the same seed gives the same parameters.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/window_conv.h"

using namespace crnn::nn;

namespace {
// All values inside ±bound, and (thousands of uniform draws) reaching above 0.95·bound.
void expect_uniform_within(const torch::Tensor& t, double bound, const std::string& what) {
  const double max_abs = t.abs().max().item<double>();
  EXPECT_LE(max_abs, bound) << what;
  EXPECT_GT(max_abs, 0.95 * bound) << what;
  EXPECT_LT(std::abs(t.mean().item<double>()), 0.1 * bound) << what;
}
}  // namespace

TEST(Initialization, RecurrentLayersAreUniformOverOneOverRootM) {
  torch::manual_seed(1);
  PeepholeLSTM lstm(PeepholeLSTMOptions(30, 16).bidirectional(true));
  std::vector<torch::Tensor> all;
  for (auto& p : lstm->parameters()) all.push_back(p.flatten());
  expect_uniform_within(torch::cat(all), 1.0 / 4, "PeepholeLSTM m = 16");  // 1/√16

  ConvRecurrent rnn(ConvRecurrentOptions(30, 25).kind(RecurrentKind::rnn).window(3));
  all.clear();
  for (auto* p : {&rnn->rnn_weight_ih, &rnn->rnn_weight_hh, &rnn->rnn_bias}) all.push_back(p->flatten());
  expect_uniform_within(torch::cat(all), 1.0 / 5, "CRNN m = 25");  // 1/√25
}

TEST(Initialization, WindowConvIsUniformOverOneOverRootOfItsFanIn) {
  torch::manual_seed(1);
  WindowConv conv(WindowConvOptions(20, 400).window(5));  // fan-in k·r1 = 100
  expect_uniform_within(conv->weight, 0.1, "WindowConv weight");
  expect_uniform_within(conv->bias, 0.1, "WindowConv bias");
}

TEST(Initialization, TheSameSeedGivesTheSameParameters) {
  auto build = [](uint64_t seed) {
    torch::manual_seed(seed);
    ConvRecurrent layer(ConvRecurrentOptions(6, 8).kind(RecurrentKind::blstm).extended(true));
    std::vector<torch::Tensor> ps;
    for (auto& p : layer->parameters()) ps.push_back(p.detach().flatten());
    return torch::cat(ps);
  };
  EXPECT_TRUE(torch::equal(build(7), build(7)));
  EXPECT_FALSE(torch::equal(build(7), build(8)));
}

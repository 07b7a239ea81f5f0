#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "crnn/nn/window_conv.h"
#include "nn/gradcheck.h"
#include "support/test_support.h"

using namespace crnn::nn;

// The paper's standard convolutional layer equals torch::conv1d + activation
// (+ max_pool1d) on full-length sequences.
TEST(WindowConv, EqualsConv1dActivationAndMaxPool) {
  torch::manual_seed(8);
  for (auto act : {Activation::sigmoid, Activation::relu, Activation::tanh}) {
    WindowConv conv(WindowConvOptions(6, 10).activation(act).window(5).shift(2));
    auto x = torch::randn({3, 40, 6});
    auto y = conv(PaddedSequence{x, torch::full({3}, 40, torch::kLong)});
    auto z = torch::conv1d(x.transpose(1, 2), conv->weight, conv->bias, 2);
    auto ref = (act == Activation::sigmoid ? torch::sigmoid(z)
                : act == Activation::relu  ? torch::relu(z)
                                           : torch::tanh(z)).transpose(1, 2);
    ASSERT_EQ(y.data.sizes(), ref.sizes());
    EXPECT_TRUE(torch::allclose(y.data, ref, 1e-5, 1e-6)) << to_string(act);
    EXPECT_TRUE((y.lengths == 18).all().item<bool>());  // floor((40 − 5)/2) + 1
  }
  WindowConv pooled(WindowConvOptions(6, 10).window(5).shift(2).pool(2).pool_shift(2));
  auto x = torch::randn({2, 40, 6});
  auto y = pooled(PaddedSequence{x, torch::full({2}, 40, torch::kLong)});
  auto ref = torch::max_pool1d(torch::sigmoid(torch::conv1d(x.transpose(1, 2), pooled->weight, pooled->bias, 2)), 2, 2)
                 .transpose(1, 2);
  EXPECT_TRUE(torch::allclose(y.data, ref, 1e-5, 1e-6));
}

TEST(WindowConv, GradientsMatchFiniteDifferences) {
  torch::manual_seed(9);
  for (auto act : {Activation::sigmoid, Activation::tanh}) {
    WindowConv conv(WindowConvOptions(3, 4).activation(act).window(3).shift(2).pool(2).pool_shift(1));
    conv->to(torch::kDouble);
    auto x = torch::randn({3, 9, 3}, torch::kDouble).requires_grad_(true);
    auto lengths = torch::tensor({9, 4, 2}, torch::kLong);
    crnn::testing::expect_gradients_match(
        [&] { return crnn::testing::weighted_sum(conv(PaddedSequence{x, lengths}).data); },
        {{"weight", conv->weight}, {"bias", conv->bias}, {"input", x}});
  }
}

TEST(WindowConv, RaggedBatchEqualsEachSequenceAlone) {
  torch::manual_seed(10);
  WindowConv conv(WindowConvOptions(3, 4).window(3).shift(2).pool(2).pool_shift(2));
  const std::vector<int64_t> lens{12, 5, 2};
  auto x = torch::randn({3, 12, 3});
  x[1].narrow(0, 5, 7).fill_(NAN);
  x[2].narrow(0, 2, 10).fill_(1e6);
  auto y = conv(PaddedSequence{x, torch::tensor(lens, torch::kLong)});
  for (int b = 0; b < 3; ++b) {
    auto yb = conv(PaddedSequence{x[b].narrow(0, 0, lens[b]).unsqueeze(0), torch::tensor({lens[b]}, torch::kLong)});
    const int64_t lb = yb.lengths[0].item<int64_t>();
    EXPECT_EQ(y.lengths[b].item<int64_t>(), lb);
    EXPECT_TRUE(torch::allclose(yb.data[0], y.data[b].narrow(0, 0, lb))) << b;
  }
}

TEST(WindowConv, InvalidOptionsRaiseClearErrors) {
  const auto expect_error = [](const std::function<void()>& f, const std::string& fragment) {
    EXPECT_TRUE(crnn::test::contains(crnn::test::error_of(f), fragment));
  };
  expect_error([] { WindowConv(WindowConvOptions(3, 4).window(0)); }, "WindowConv: window (r1) must be in 1..1048576, got 0");
  expect_error([] { WindowConv(WindowConvOptions(3, 4).shift(0)); }, "WindowConv: shift (r2) must be in 1..1048576, got 0");
  expect_error([] { WindowConv(WindowConvOptions(3, 4).pool(0)); }, "WindowConv: pool (p1) must be in 1..1048576, got 0");
  expect_error([] { WindowConv(WindowConvOptions(0, 4)); }, "WindowConv: input_size (k) must be >= 1, got 0");
  expect_error([] { WindowConv(WindowConvOptions(3, 0)); }, "WindowConv: features (n) must be in 1..65536, got 0");
  WindowConv conv(WindowConvOptions(3, 4));
  expect_error([&] { conv(PaddedSequence{torch::randn({1, 8, 2}), torch::tensor({8}, torch::kLong)}); },
               "WindowConv: input has 2 features per frame but the layer was built for input_size=3");
}

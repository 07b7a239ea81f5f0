#include <gtest/gtest.h>

#include <functional>
#include <torch/torch.h>

#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/sequence.h"

using namespace crnn::nn;

TEST(Windowing, WindowCountFormula) {
  // T' = floor((L − r1)/r2) + 1 (SPEC §1)
  EXPECT_EQ(window_count(10, 5, 2), 3);  // starts 0, 2, 4 (4 + 5 = 9 <= 10; 6 + 5 = 11 > 10)
  EXPECT_EQ(window_count(11, 5, 2), 4);  // starts 0, 2, 4, 6
  EXPECT_EQ(window_count(5, 5, 2), 1);
  EXPECT_EQ(window_count(7, 1, 1), 7);
  // Shorter than r1: padded to one window, never dropped.
  EXPECT_EQ(window_count(3, 5, 2), 1);
  EXPECT_EQ(window_count(1, 5, 2), 1);
  auto c = window_counts(torch::tensor({10, 11, 3}, torch::kLong), 5, 2);
  EXPECT_TRUE(torch::equal(c, torch::tensor({3, 4, 1}, torch::kLong)));
}

TEST(Windowing, ExtractWindowsContentsAndZeroPadding) {
  // One feature whose value is the frame index + 1; sequence 2 has 3 real frames
  // and garbage (99) after them.
  auto data = torch::arange(1, 9, torch::kFloat).view({1, 8, 1}).repeat({2, 1, 1});
  data[1].narrow(0, 3, 5).fill_(99);
  PaddedSequence x{data, torch::tensor({8, 3}, torch::kLong)};
  auto w = extract_windows(x, 4, 2);  // windows of 4 every 2
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{2, 3, 4, 1}));
  // Sequence 1 (length 8): windows start at 0, 2, 4.
  EXPECT_TRUE(torch::equal(w[0].squeeze(-1),
                           torch::tensor({{1, 2, 3, 4}, {3, 4, 5, 6}, {5, 6, 7, 8}}, torch::kFloat)));
  // Sequence 2 (length 3 < r1 = 4): its one window is zero-padded; its other
  // (invalid) windows never see the garbage either.
  EXPECT_TRUE(torch::equal(w[1][0].squeeze(-1), torch::tensor({1, 2, 3, 0}, torch::kFloat)));
  EXPECT_FALSE((w == 99).any().item<bool>());
}

TEST(Pooling, EqualsTorchMaxPool1dOnFullLengthSequences) {
  torch::manual_seed(0);
  auto data = torch::randn({3, 11, 4});
  PaddedSequence x{data, torch::full({3}, 11, torch::kLong)};
  for (auto [p1, p2] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {3, 1}, {3, 2}, {2, 3}}) {
    auto y = max_pool_sequence(x, p1, p2);
    auto ref = torch::max_pool1d(data.transpose(1, 2), p1, p2).transpose(1, 2);
    ASSERT_EQ(y.data.sizes(), ref.sizes()) << p1 << "/" << p2;
    EXPECT_TRUE(torch::equal(y.data, ref)) << p1 << "/" << p2;
    EXPECT_TRUE((y.lengths == ref.size(1)).all().item<bool>());
  }
}

TEST(Pooling, RaggedNeverPoolsPaddingAndShortSequencesPoolWhatTheyHave) {
  // Values are negative so that a zero or garbage padding would win a max.
  auto data = -torch::arange(1, 7, torch::kFloat).view({1, 6, 1}).repeat({2, 1, 1});
  data[1].narrow(0, 1, 5).fill_(1000);  // garbage after sequence 2's single step
  PaddedSequence x{data, torch::tensor({6, 1}, torch::kLong)};
  auto y = max_pool_sequence(x, 3, 3);
  EXPECT_TRUE(torch::equal(y.lengths, torch::tensor({2, 1}, torch::kLong)));
  // Sequence 1: max(−1,−2,−3) = −1, max(−4,−5,−6) = −4.
  EXPECT_FLOAT_EQ(y.data[0][0][0].item<float>(), -1);
  EXPECT_FLOAT_EQ(y.data[0][1][0].item<float>(), -4);
  // Sequence 2: one step, fewer than p1 = 3: pools over what it has; padding zero.
  EXPECT_FLOAT_EQ(y.data[1][0][0].item<float>(), -1);
  EXPECT_FLOAT_EQ(y.data[1][1][0].item<float>(), 0);
}

TEST(PaddedSequence, RejectsBadLengths) {
  auto d = torch::zeros({2, 5, 3});
  EXPECT_THROW(check_padded({d, torch::tensor({5, 0}, torch::kLong)}, "t"), c10::Error);
  EXPECT_THROW(check_padded({d, torch::tensor({6, 1}, torch::kLong)}, "t"), c10::Error);
  EXPECT_THROW(check_padded({d, torch::tensor({5}, torch::kLong)}, "t"), c10::Error);
  EXPECT_THROW(check_padded({d, torch::tensor({5, 1}, torch::kInt)}, "t"), c10::Error);
  EXPECT_NO_THROW(check_padded({d, torch::tensor({5, 1}, torch::kLong)}, "t"));
}

// Input a module cannot take gets crnn's message naming the module, not an
// error from inside LibTorch (mm's dtype mismatch, max() of an empty tensor).
TEST(PaddedSequence, ModulesNameAnEmptyBatchAndADtypeOtherThanTheirParameters) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  ConvRecurrent conv(ConvRecurrentOptions(4, 6));
  PeepholeLSTM lstm(PeepholeLSTMOptions(4, 5));
  const auto lengths = torch::tensor({7, 3}, torch::kLong);
  const auto x64 = torch::randn({2, 7, 4}, torch::kDouble);
  EXPECT_EQ(message([&] { conv(PaddedSequence{x64, lengths}); }),
            "ConvRecurrent: data is Double but the module's parameters are Float; convert one of them (data.to(...) "
            "or module->to(...))");
  EXPECT_EQ(message([&] { lstm(PaddedSequence{x64, lengths}); }).rfind("PeepholeLSTM: data is Double", 0), 0u);
  const auto empty = torch::zeros({0, 7, 4});
  EXPECT_EQ(message([&] { conv(PaddedSequence{empty, torch::zeros({0}, torch::kLong)}); }),
            "ConvRecurrent: empty batch (data of shape [0, 7, 4]); give at least one sequence of at least one frame");
  // The module converted to double takes double input (and gives what float gives, to float precision).
  conv->to(torch::kDouble);
  const auto y64 = conv(PaddedSequence{x64, lengths}).data;
  conv->to(torch::kFloat);
  const auto y32 = conv(PaddedSequence{x64.to(torch::kFloat), lengths}).data;
  EXPECT_TRUE(torch::allclose(y64.to(torch::kFloat), y32, 1e-4, 1e-5));
}

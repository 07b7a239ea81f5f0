// sma3 / sma3nz of egemaps_smoothing.h against hand-worked values.
#include <gtest/gtest.h>

#include "crnn/audio/egemaps_smoothing.h"

using crnn::audio::egemaps::sma3;

TEST(EgemapsSmoothing, ThreeFrameMeanRepeatsTheEdges) {
  const auto raw = torch::tensor({3.0f, 6.0f, 9.0f, 0.0f}).unsqueeze(1);
  const auto s = sma3(raw, 5, false);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{5, 1}));
  EXPECT_FLOAT_EQ(s[0][0].item<float>(), (3 + 3 + 6) / 3.0f);  // frame -1 := frame 0
  EXPECT_FLOAT_EQ(s[1][0].item<float>(), (3 + 6 + 9) / 3.0f);
  EXPECT_FLOAT_EQ(s[3][0].item<float>(), (9 + 0 + 0) / 3.0f);
  EXPECT_FLOAT_EQ(s[4][0].item<float>(), 0.0f);  // past the end: the last frame
}

TEST(EgemapsSmoothing, NonzeroOnlyAveragesVoicedValues) {
  // The openSMILE reference shows -201 (non-zero) entering the nz mean.
  const auto raw = torch::tensor({0.0f, 10.0f, 20.0f, 0.0f, 0.0f, -201.0f}).unsqueeze(1);
  const auto s = sma3(raw, 6, true);
  EXPECT_FLOAT_EQ(s[0][0].item<float>(), 10.0f);  // {0, 0, 10}
  EXPECT_FLOAT_EQ(s[1][0].item<float>(), 15.0f);  // {0, 10, 20}
  EXPECT_FLOAT_EQ(s[3][0].item<float>(), 20.0f);  // {20, 0, 0}
  EXPECT_FLOAT_EQ(s[4][0].item<float>(), -201.0f);
  EXPECT_FLOAT_EQ(sma3(torch::zeros({4, 2}), 5, true).abs().sum().item<float>(), 0.0f);
}

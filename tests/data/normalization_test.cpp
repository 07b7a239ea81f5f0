#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "crnn/data/normalization.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::contains;
using crnn::test::error_of;

namespace {
torch::Tensor t(std::vector<std::vector<float>> rows) {
  const int64_t n = static_cast<int64_t>(rows.size()), k = static_cast<int64_t>(rows[0].size());
  auto x = torch::empty({n, k});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) x[i][j] = rows[static_cast<size_t>(i)][static_cast<size_t>(j)];
  return x;
}
float elem(const torch::Tensor& x, int64_t i) { return x[i].item<float>(); }

// Speaker A: two utterances, frames (1,10) (3,10) | (5,10): feature 1 is constant.
// Speaker B: frames (0,0) (2,4).
std::map<std::string, std::vector<torch::Tensor>> corpus() {
  return {{"A", {t({{1, 10}, {3, 10}}), t({{5, 10}})}}, {"B", {t({{0, 0}, {2, 4}})}}};
}
}  // namespace

TEST(Normalization, PerSpeakerStatsOverAllFramesOfTheSpeaker) {
  SpeakerStats s = compute_speaker_stats(corpus());
  const auto& a = s.speakers.at("A");
  // Feature 0 of A: 1, 3, 5 → mean 3, population variance (4 + 0 + 4) / 3.
  EXPECT_EQ(a.frames, 3);
  EXPECT_FLOAT_EQ(elem(a.mean, 0), 3.f);
  EXPECT_FLOAT_EQ(elem(a.std, 0), std::sqrt(8.f / 3.f));
  EXPECT_FLOAT_EQ(elem(a.mean, 1), 10.f);
  EXPECT_FLOAT_EQ(elem(a.std, 1), 0.f);
  EXPECT_FLOAT_EQ(elem(a.scale, 1), 0.f);
  const auto& b = s.speakers.at("B");
  EXPECT_FLOAT_EQ(elem(b.mean, 0), 1.f);
  EXPECT_FLOAT_EQ(elem(b.mean, 1), 2.f);
  EXPECT_FLOAT_EQ(elem(b.std, 0), 1.f);
  EXPECT_FLOAT_EQ(elem(b.std, 1), 2.f);
}

TEST(Normalization, ApplyStandardisesAndZeroesConstantFeatures) {
  SpeakerStats s = compute_speaker_stats(corpus());
  auto za = s.apply(t({{1, 10}, {5, 10}}), "A");
  EXPECT_NEAR(za[0][0].item<float>(), -2.f / std::sqrt(8.f / 3.f), 1e-6);  // -1.2247
  EXPECT_NEAR(za[1][0].item<float>(), 2.f / std::sqrt(8.f / 3.f), 1e-6);
  // Zero variance: the output is 0, whatever the input (never inf or nan).
  EXPECT_EQ(za[0][1].item<float>(), 0.f);
  EXPECT_EQ(s.apply(t({{3, 11}}), "A")[0][1].item<float>(), 0.f);
  auto zb = s.apply(t({{2, 4}, {0, 0}}), "B");
  EXPECT_TRUE(torch::allclose(zb, t({{1, 1}, {-1, -1}})));
  // A padded batch B × T × k works too (statistics broadcast over the last dim).
  auto batch = s.apply(t({{2, 4}}).unsqueeze(0).repeat({3, 2, 1}), "B");
  EXPECT_TRUE(torch::allclose(batch, torch::ones({3, 2, 2})));
}

TEST(Normalization, GlobalStatsAreTheFallbackForUnseenSpeakers) {
  // All 5 frames: feature 0 = 1,3,5,0,2 → mean 2.2, var 7.8 − 2.2² = 2.96;
  // feature 1 = 10,10,10,0,4 → mean 6.8, var 63.2 − 6.8² = 16.96.
  SpeakerStats all = compute_speaker_stats(corpus());
  EXPECT_EQ(all.global.frames, 5);
  EXPECT_NEAR(elem(all.global.mean, 0), 2.2f, 1e-6);
  EXPECT_NEAR(elem(all.global.std, 0), std::sqrt(2.96f), 1e-6);
  EXPECT_NEAR(elem(all.global.mean, 1), 6.8f, 1e-6);
  EXPECT_NEAR(elem(all.global.std, 1), std::sqrt(16.96f), 1e-5);
  EXPECT_FALSE(all.has_speaker("C"));
  auto zc = all.apply(t({{2.2f, 6.8f}}), "C");
  EXPECT_NEAR(zc[0][0].item<float>(), 0.f, 1e-6);
  EXPECT_NEAR(zc[0][1].item<float>(), 0.f, 1e-6);

  // Global statistics from the training speakers only (here: B).
  NormalizationOptions o;
  o.global_speakers = {"B"};
  SpeakerStats train_only = compute_speaker_stats(corpus(), o);
  EXPECT_EQ(train_only.global.frames, 2);
  EXPECT_FLOAT_EQ(elem(train_only.global.mean, 1), 2.f);
  EXPECT_EQ(train_only.speakers.size(), 2u) << "every speaker still gets its own statistics";
}

TEST(Normalization, LargeOffsetsKeepPrecision) {
  // float32 sums of squares would lose the 0.5 std at an offset of 1e4.
  std::vector<torch::Tensor> utts;
  for (int i = 0; i < 1000; ++i) utts.push_back(t({{10000.f}, {10001.f}}));
  auto s = compute_stats(utts);
  EXPECT_FLOAT_EQ(elem(s.mean, 0), 10000.5f);
  EXPECT_NEAR(elem(s.std, 0), 0.5f, 1e-4);
  EXPECT_NEAR(apply(t({{10001.f}}), s)[0][0].item<float>(), 1.f, 1e-3);
}

TEST(Normalization, BadInputs) {
  EXPECT_TRUE(contains(error_of([] { compute_speaker_stats({{"A", {t({{1, 2}}), t({{1, 2, 3}})}}}); }),
                       "3 features, expected 2"));
  EXPECT_TRUE(contains(error_of([] { compute_speaker_stats({{"A", {}}}); }), "speaker 'A': no frames"));
  EXPECT_TRUE(contains(error_of([] { compute_speaker_stats({{"A", {torch::ones({3})}}}); }), "frames × features"));
  NormalizationOptions o;
  o.global_speakers = {"Z"};
  EXPECT_TRUE(contains(error_of([&] { compute_speaker_stats(corpus(), o); }), "global speaker 'Z'"));
  SpeakerStats s = compute_speaker_stats(corpus());
  EXPECT_TRUE(contains(error_of([&] { s.apply(torch::ones({2, 3}), "A"); }), "3 features, statistics have 2"));
  SpeakerStats empty;
  EXPECT_TRUE(contains(error_of([&] { empty.apply(torch::ones({2, 2}), "X"); }), "no statistics for speaker 'X'"));
}

// F0 and jitter of egemaps_pitch.h against synthetic vowels with known truth
// (tests/support/glottal_synth.h); no ../shared needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/egemaps_pitch.h"
#include "support/glottal_synth.h"

using namespace crnn::audio;

namespace {

torch::Tensor to_tensor(const std::vector<float>& w) {
  return torch::from_blob(const_cast<float*>(w.data()), {static_cast<int64_t>(w.size())}, torch::kFloat).clone();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Frames 5..T-5 (away from the edges).
std::vector<double> inner(const torch::Tensor& x) {
  std::vector<double> v;
  for (int64_t t = 5; t + 5 < x.size(0); ++t) v.push_back(x[t].item<double>());
  return v;
}

}  // namespace

TEST(EgemapsPitch, SubharmonicSummationFindsKnownF0) {
  for (double f0 : {90.0, 120.0, 180.0, 250.0, 340.0}) {
    SCOPED_TRACE(f0);
    crnn::test::Vowel v;
    v.f0 = f0;
    const auto made = crnn::test::synth_vowel(v);
    const auto wave = to_tensor(made.wave);
    const int64_t frames = egemaps_num_frames(wave.size(0));
    const auto p = egemaps::track_pitch(wave, 16000, frames);
    const auto f = inner(p.f0_hz);
    int voiced = 0;
    std::vector<double> err;
    for (double x : f) {
      voiced += x > 0;
      if (x > 0) err.push_back(std::abs(12.0 * std::log2(x / f0)));
    }
    EXPECT_EQ(voiced, static_cast<int>(f.size())) << "every inner frame of a steady vowel is voiced";
    EXPECT_LE(median(err), 0.1) << "median |error| in semitones";
    EXPECT_LE(*std::max_element(err.begin(), err.end()), 0.5) << "no octave errors";
  }
}

TEST(EgemapsPitch, SemitonesFrom27_5Hz) {
  const auto st = egemaps::semitones_from_27_5(torch::tensor({27.5f, 55.0f, 110.0f, 0.0f}));
  EXPECT_NEAR(st[0].item<float>(), 0.0f, 1e-4);
  EXPECT_NEAR(st[1].item<float>(), 12.0f, 1e-4);
  EXPECT_NEAR(st[2].item<float>(), 24.0f, 1e-4);
  EXPECT_EQ(st[3].item<float>(), 0.0f);  // unvoiced stays 0
}

TEST(EgemapsPitch, JitterFollowsKnownPeriodPerturbation) {
  for (double jitter : {0.0, 0.01, 0.03}) {
    for (double f0 : {110.0, 220.0}) {
      SCOPED_TRACE(testing::Message() << "jitter " << jitter << " f0 " << f0);
      crnn::test::Vowel v;
      v.f0 = f0;
      v.jitter = jitter / 2.0;  // alternating +-a gives local jitter 2a
      const auto made = crnn::test::synth_vowel(v);
      const auto wave = to_tensor(made.wave);
      const int64_t frames = egemaps_num_frames(wave.size(0));
      const auto p = egemaps::track_pitch(wave, 16000, frames);
      const auto periods = egemaps::mark_periods(wave, 16000, p.f0_hz);
      const double got = median(inner(egemaps::jitter_local(periods, 16000, p.f0_hz)));
      EXPECT_NEAR(got, made.jitter, 0.2 * made.jitter + 0.003) << "truth " << made.jitter;
    }
  }
}

TEST(EgemapsPitch, PeriodsOfASteadyVowelHaveTheTruePeriod) {
  crnn::test::Vowel v;
  v.f0 = 125.0;  // 128 samples at 16 kHz
  const auto made = crnn::test::synth_vowel(v);
  const auto wave = to_tensor(made.wave);
  const auto p = egemaps::track_pitch(wave, 16000, egemaps_num_frames(wave.size(0)));
  const auto periods = egemaps::mark_periods(wave, 16000, p.f0_hz);
  ASSERT_GT(periods.size(), 100u);
  for (const auto& q : periods) EXPECT_NEAR(q.length, 128.0, 1.0);
}

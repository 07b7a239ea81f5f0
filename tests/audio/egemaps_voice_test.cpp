// Shimmer, HNR and harmonic differences of egemaps_voice.h on signals with
// known truth (tests/support/glottal_synth.h and sums of sinusoids).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/egemaps_voice.h"
#include "support/glottal_synth.h"

using namespace crnn::audio;

namespace {

torch::Tensor to_tensor(const std::vector<float>& w) {
  return torch::from_blob(const_cast<float*>(w.data()), {static_cast<int64_t>(w.size())}, torch::kFloat).clone();
}

double inner_median(const torch::Tensor& x) {
  std::vector<double> v;
  for (int64_t t = 5; t + 5 < x.size(0); ++t) v.push_back(x[t].item<double>());
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

TEST(EgemapsVoice, ShimmerFollowsKnownAmplitudePerturbation) {
  for (double s : {0.0, 0.05, 0.1}) {
    SCOPED_TRACE(s);
    crnn::test::Vowel v;
    v.f0 = 110;
    v.shimmer = s;  // alternating gains 1 +- s
    const auto made = crnn::test::synth_vowel(v);
    const auto wave = to_tensor(made.wave);
    const auto p = egemaps::track_pitch(wave, 16000, egemaps_num_frames(wave.size(0)));
    const auto periods = egemaps::mark_periods(wave, 16000, p.f0_hz);
    const double truth = 20.0 * std::log10((1.0 + s) / (1.0 - s));
    EXPECT_NEAR(inner_median(egemaps::shimmer_local_db(periods, 16000, p.f0_hz)), truth, 0.25 * truth + 0.1);
  }
}

TEST(EgemapsVoice, HnrFallsAsNoiseIsAdded) {
  double previous = 1e9;
  for (double noise : {0.0, 0.01, 0.05, 0.15}) {
    SCOPED_TRACE(noise);
    crnn::test::Vowel v;
    v.noise = noise;
    const auto wave = to_tensor(crnn::test::synth_vowel(v).wave);
    const auto p = egemaps::track_pitch(wave, 16000, egemaps_num_frames(wave.size(0)));
    const double hnr = inner_median(egemaps::hnr_db(p));
    EXPECT_LT(hnr, previous);
    if (noise == 0.0) EXPECT_GT(hnr, 20.0) << "a clean periodic signal";
    previous = hnr;
  }
}

TEST(EgemapsVoice, HarmonicDifferencesOfTwoSinusoids) {
  // 0.4 sin(2 pi 200 t) + 0.1 sin(2 pi 400 t) + 0.04 sin(2 pi 3000 t):
  // H1 - H2 = 20 log10(4) = 12.04 dB; with F3 at 3 kHz, H1 - A3 = 20 log10(10) = 20 dB.
  auto t = torch::arange(16000, torch::kDouble) / 16000.0;
  auto x = (0.4 * torch::sin(2 * M_PI * 200 * t) + 0.1 * torch::sin(2 * M_PI * 400 * t) +
            0.04 * torch::sin(2 * M_PI * 3000 * t)).to(torch::kFloat);
  const int64_t frames = egemaps_num_frames(x.size(0));
  const auto p = egemaps::track_pitch(x, 16000, frames);
  EXPECT_NEAR(inner_median(p.f0_hz), 200.0, 1.0);
  EXPECT_NEAR(inner_median(egemaps::h1_h2_db(p)), 12.04, 0.5);
  EXPECT_NEAR(inner_median(egemaps::h1_a3_db(p, torch::full({frames}, 3000.0f))), 20.0, 0.5);
  // Unvoiced frames: 0.
  egemaps::PitchTrack silent = p;
  silent.f0_hz = torch::zeros({frames});
  EXPECT_EQ(egemaps::h1_h2_db(silent).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(egemaps::hnr_db(silent).abs().sum().item<float>(), 0.0f);
}

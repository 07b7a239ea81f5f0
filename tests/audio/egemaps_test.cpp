// compute_egemaps: shape, frame count, names, options round trip and bad input
// (short, silent, noise, tone, clipped, DC offset) — never NaN or Inf.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/feature_extractor.h"
#include "crnn/audio/read_audio.h"
#include "support/glottal_synth.h"
#include "support/test_support.h"

using namespace crnn::audio;

namespace {

torch::Tensor to_tensor(const std::vector<float>& w) {
  return torch::from_blob(const_cast<float*>(w.data()), {static_cast<int64_t>(w.size())}, torch::kFloat).clone();
}

void expect_finite_with_unvoiced_rule(const torch::Tensor& lld, const char* what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(lld.dim(), 2);
  ASSERT_EQ(lld.size(1), kEgemapsLlds);
  EXPECT_TRUE(torch::isfinite(lld).all().item<bool>()) << "NaN or Inf";
  // Formants are resonances inside the analysed band (0 where none is found):
  // centre frequency and bandwidth both within 0..8 kHz at 16 kHz.
  for (int64_t c : {16, 17, 19, 20, 22, 23}) {
    EXPECT_GE(lld.select(1, c).min().item<float>(), 0.0f) << "column " << c;
    EXPECT_LE(lld.select(1, c).max().item<float>(), 8000.0f) << "column " << c;
  }
  // Where F0 is 0 the voiced-only descriptors are 0 and the levels -201 (raw).
  for (int64_t t = 0; t < lld.size(0); ++t) {
    if (lld[t][10].item<float>() != 0.0f) continue;
    for (int64_t c : {11, 12, 13, 14, 15}) EXPECT_EQ(lld[t][c].item<float>(), 0.0f) << "column " << c;
    for (int64_t c : {18, 21, 24}) EXPECT_EQ(lld[t][c].item<float>(), -201.0f) << "column " << c;
  }
}

}  // namespace

TEST(Egemaps, FrameCountFollowsTheSixtyMillisecondWindows) {
  EXPECT_EQ(egemaps_num_frames(959), 0);
  EXPECT_EQ(egemaps_num_frames(960), 1);
  EXPECT_EQ(egemaps_num_frames(1119), 1);
  EXPECT_EQ(egemaps_num_frames(1120), 2);
  EXPECT_EQ(egemaps_num_frames(16000), 95);  // 1 + (16000 - 960) / 160
  const auto wave = torch::randn({16000}) * 0.1;
  EXPECT_EQ(compute_egemaps(wave, EgemapsOptions().smooth(false)).sizes(), (std::vector<int64_t>{95, 25}));
  EXPECT_EQ(compute_egemaps(wave).sizes(), (std::vector<int64_t>{96, 25}));  // smoothed: one more, as openSMILE
}

TEST(Egemaps, ShorterThanOneWindowGivesZeroFrames) {
  // As compute_fbank for input shorter than a frame: an empty matrix, not an error.
  EXPECT_EQ(compute_egemaps(torch::rand({959})).sizes(), (std::vector<int64_t>{0, 25}));
  EXPECT_EQ(compute_egemaps(torch::zeros({0}), EgemapsOptions().smooth(false)).sizes(), (std::vector<int64_t>{0, 25}));
  EXPECT_THROW(compute_egemaps(torch::zeros({2, 2000})), c10::Error);
}

TEST(Egemaps, NamesFollowOpenSmileOrder) {
  const auto names = egemaps_feature_names(true);
  ASSERT_EQ(names.size(), 25u);
  EXPECT_EQ(names[0], "Loudness_sma3");
  EXPECT_EQ(names[9], "mfcc4_sma3");
  EXPECT_EQ(names[10], "F0semitoneFrom27.5Hz_sma3nz");
  EXPECT_EQ(names[24], "F3amplitudeLogRelF0_sma3nz");
  EXPECT_EQ(egemaps_feature_names(false)[5], "spectralFlux");
}

TEST(Egemaps, DescriptionRoundTripsThroughTheExtractor) {
  const auto o = EgemapsOptions().smooth(false).sample_rate(22050);
  const auto back = parse_egemaps_description(describe(o) + " resampler=soxr-hq");
  EXPECT_FALSE(back.smooth());
  EXPECT_EQ(back.sample_rate(), 22050);
  EXPECT_THROW(parse_egemaps_description("egemaps-v02 smooth=maybe"), std::invalid_argument);
  EXPECT_THROW(parse_egemaps_description("egemaps-v02 colour=red"), std::invalid_argument);
  EXPECT_THROW(parse_egemaps_description("kaldi-fbank num_bins=26"), std::invalid_argument);
  EXPECT_THROW(parse_egemaps_description("egemaps-v02 sample_rate=16000Hz"), std::invalid_argument);
  EXPECT_THROW(parse_egemaps_description("egemaps-v02 sample_rate=fast"), std::invalid_argument);

  const auto fx = FeatureExtractor::parse(describe(EgemapsOptions()) + " resampler=soxr-hq");
  EXPECT_EQ(fx.kind(), FeatureExtractor::Kind::Egemaps);
  EXPECT_EQ(fx.num_features(), 25);
  EXPECT_EQ(fx.feature_names(), egemaps_feature_names(true));
  EXPECT_EQ(FeatureExtractor::parse(describe(FbankOptions())).kind(), FeatureExtractor::Kind::Fbank);
  EXPECT_THROW(FeatureExtractor::parse("mystery-features a=1"), std::invalid_argument);
}

TEST(Egemaps, BadSignalsNeverGiveNanOrInf) {
  const int64_t n = 16000;
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> noise(n);
  for (auto& x : noise) x = 0.3f * g(rng);
  auto t = torch::arange(n, torch::kFloat) / 16000.0;
  crnn::test::Vowel v;
  const auto vowel = to_tensor(crnn::test::synth_vowel(v).wave);
  const std::vector<std::pair<const char*, torch::Tensor>> signals = {
      {"digital silence", torch::zeros({n})},
      {"white noise", to_tensor(noise)},
      {"pure tone 440 Hz", 0.5 * torch::sin(2 * M_PI * 440.0 * t)},
      {"pure tone 4 kHz", 0.5 * torch::sin(2 * M_PI * 4000.0 * t)},
      {"clipped vowel", (vowel * 20.0).clamp(-1.0, 1.0)},
      {"DC offset only", torch::full({n}, 0.5f)},
      {"vowel on a DC offset", vowel * 0.5 + 0.4},
      {"tiny noise", to_tensor(noise) * 1e-7},
      {"single click", torch::zeros({n}).index_put_({8000}, 1.0f)},
      {"full-scale square wave 100 Hz", torch::sign(torch::sin(2 * M_PI * 100.0 * t))},
      {"Nyquist alternation", torch::where(torch::arange(n) % 2 == 0, torch::ones({n}), -torch::ones({n}))},
      {"exactly one 60 ms window of noise", to_tensor(noise).narrow(0, 0, 960).contiguous()},
  };
  for (const auto& [what, wave] : signals) {
    expect_finite_with_unvoiced_rule(compute_egemaps(wave, EgemapsOptions().smooth(false)), what);
    EXPECT_TRUE(torch::isfinite(compute_egemaps(wave)).all().item<bool>()) << what << " (smoothed)";
  }
  // One whole window: 1 raw frame, 2 smoothed.
  EXPECT_EQ(compute_egemaps(to_tensor(noise).narrow(0, 0, 960).contiguous()).size(0), 2);
  // Silence and noise are unvoiced throughout; digital silence has no formants.
  EXPECT_EQ(compute_egemaps(torch::zeros({n})).select(1, 10).abs().sum().item<float>(), 0.0f);
  for (int64_t c : {16, 17, 19, 20, 22, 23})
    EXPECT_EQ(compute_egemaps(torch::zeros({n})).select(1, c).abs().max().item<float>(), 0.0f) << "column " << c;
  EXPECT_LE((compute_egemaps(to_tensor(noise), EgemapsOptions().smooth(false)).select(1, 10) != 0).sum().item<int64_t>(), 5);
}

TEST(Egemaps, BlocksOfFramesDoNotChangeTheResult) {
  // Spectra are computed block_frames at a time to bound memory on long files.
  // Vowels at three pitches with jitter and noise, separated by silence, so that
  // voicing, the Viterbi track, the spectral flux and the smoother all cross
  // block boundaries (4.3 s: 425 frames).
  std::vector<float> w;
  for (double f0 : {110.0, 180.0, 260.0}) {
    crnn::test::Vowel v;
    v.f0 = f0;
    v.jitter = 0.01;
    v.noise = 0.01;
    v.seconds = 1.2;
    v.seed = static_cast<unsigned>(f0);
    const auto part = crnn::test::synth_vowel(v).wave;
    w.insert(w.end(), part.begin(), part.end());
    w.insert(w.end(), 3000, 0.0f);
  }
  const auto wave = to_tensor(w);
  for (bool smooth : {false, true}) {
    const auto whole = compute_egemaps(wave, EgemapsOptions().smooth(smooth).block_frames(1 << 30));
    ASSERT_GT(whole.size(0), 400);
    ASSERT_GT((whole.select(1, 10) != 0).sum().item<int64_t>(), 200) << "the vowels are voiced";
    for (int64_t block : {1, 7, 100, 424}) {
      const auto blocked = compute_egemaps(wave, EgemapsOptions().smooth(smooth).block_frames(block));
      ASSERT_EQ(blocked.sizes(), whole.sizes()) << "block " << block;
      // The same voicing decisions, and the same values up to float rounding.
      EXPECT_TRUE(torch::equal(blocked.select(1, 10) != 0, whole.select(1, 10) != 0)) << "block " << block;
      const auto err = ((blocked - whole).abs() / whole.abs().clamp_min(1.0)).max().item<float>();
      EXPECT_LT(err, 1e-4) << "block " << block << (smooth ? " smoothed" : " raw");
    }
  }
  EXPECT_THROW(compute_egemaps(wave, EgemapsOptions().block_frames(0)), c10::Error);
}

TEST(Egemaps, OfFileNamesTheFileAndSkipsShortOnes) {
  crnn::test::TempDir dir;
  crnn::test::write_audio(dir.file("short.wav"), std::vector<float>(900, 0.1f), 16000, 1);
  double seconds = 0;
  EXPECT_EQ(egemaps_of_file(dir.file("short.wav"), EgemapsOptions(), &seconds).size(0), 0);
  EXPECT_NEAR(seconds, 900.0 / 16000.0, 1e-9);
  try {
    egemaps_of_file(dir.file("missing.wav"), EgemapsOptions());
    FAIL() << "no error for a missing file";
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.wav"), std::string::npos);
  }
  // A steady vowel at 8 kHz is resampled to 16 kHz and analysed.
  crnn::test::Vowel v;
  v.rate = 8000;
  v.f0 = 150;
  crnn::test::write_audio(dir.file("vowel8k.wav"), crnn::test::synth_vowel(v).wave, 8000, 1);
  const auto lld = egemaps_of_file(dir.file("vowel8k.wav"), EgemapsOptions());
  ASSERT_GT(lld.size(0), 50);
  EXPECT_NEAR(lld[50][10].item<double>(), 12.0 * std::log2(150.0 / 27.5), 0.3);
}

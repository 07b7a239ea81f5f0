// compute_fbank against committed torchaudio fixtures (scripts/make_fbank_fixture.py)
// and against hand-worked values.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "support/test_support.h"

using namespace crnn::audio;

namespace {

const std::string kDir = std::string(CRNN_FIXTURE_DIR) + "/fbank/";

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

void expect_matches(const std::string& csv, const FbankOptions& options) {
  SCOPED_TRACE(csv);
  const torch::Tensor expected = crnn::test::read_csv_matrix(kDir + csv);
  const torch::Tensor got = compute_fbank(read_audio(kDir + "tiny.wav"), options);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  EXPECT_LE(max_abs_diff(got, expected), 1e-3);
}

}  // namespace

// The variants mirror VARIANTS in scripts/make_fbank_fixture.py.
TEST(Fbank, DefaultsMatchTorchaudioFixture) { expect_matches("tiny_fbank26.csv", FbankOptions()); }

TEST(Fbank, HammingFortyBinsWithNegativeHighFreq) {
  expect_matches("tiny_hamming40.csv",
                 FbankOptions().num_bins(40).window(WindowType::Hamming).low_freq(60).high_freq(
                     -400));
}

TEST(Fbank, RectangularMagnitudeWithoutPreemphasisOrDc) {
  expect_matches("tiny_rect23_plain.csv", FbankOptions()
                                              .num_bins(23)
                                              .window(WindowType::Rectangular)
                                              .preemphasis(0.0)
                                              .remove_dc_offset(false)
                                              .use_power(false));
}

TEST(Fbank, HanningWithoutSnipEdges) {
  expect_matches("tiny_hanning26_nosnip.csv",
                 FbankOptions().window(WindowType::Hanning).snip_edges(false));
}

TEST(Fbank, BlackmanWithoutPowerOfTwoFft) {
  expect_matches("tiny_blackman26_nopow2.csv",
                 FbankOptions().window(WindowType::Blackman).round_to_power_of_two(false));
}

TEST(Fbank, FrameCountFollowsSnipEdges) {
  // 25 ms = 400 samples, 10 ms = 160 samples at 16 kHz.
  FbankOptions o;
  EXPECT_EQ(frame_length_samples(o), 400);
  EXPECT_EQ(frame_shift_samples(o), 160);
  EXPECT_EQ(num_frames(399, o), 0);
  EXPECT_EQ(num_frames(400, o), 1);
  EXPECT_EQ(num_frames(559, o), 1);
  EXPECT_EQ(num_frames(560, o), 2);
  EXPECT_EQ(num_frames(16000, o), 98);  // 1 + (16000 - 400) / 160
  EXPECT_EQ(compute_fbank(torch::zeros({16000})).sizes(), (std::vector<int64_t>{98, 26}));
  // Without snip_edges Kaldi gives round(N / shift) frames: (16000 + 80) / 160.
  EXPECT_EQ(num_frames(16000, FbankOptions().snip_edges(false)), 100);
}

TEST(Fbank, ShortWaveformGivesZeroFrames) {
  // 10 ms at 16 kHz: no complete 25 ms frame (documented: empty, not an error).
  const auto out = compute_fbank(torch::rand({160}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{0, 26}));
  EXPECT_EQ(compute_fbank(torch::zeros({0}), FbankOptions().num_bins(40)).size(1), 40);
}

TEST(Fbank, SilenceHitsTheLogFloor) {
  // All-zero input: every energy is floored at FLT_EPSILON, ln(2^-23) = -15.9424.
  const auto out = compute_fbank(torch::zeros({800}));
  EXPECT_NEAR(out.min().item<double>(), -23.0 * std::log(2.0), 1e-4);
  EXPECT_NEAR(out.max().item<double>(), -23.0 * std::log(2.0), 1e-4);
}

TEST(Fbank, SinePeaksInTheBinCentredNearItsFrequency) {
  // mel(f) = 1127 ln(1 + f/700): mel(20) = 31.75, mel(8000) = 2840.0, so the
  // 26 triangles are spaced (2840.0 - 31.75) / 27 = 104.0 mel apart and bin b
  // is centred on 31.75 + 104.0 (b + 1) mel. mel(1000 Hz) = 1000.0 lies
  // between the centres of bins 8 (967.8) and 9 (1071.8), nearer bin 8.
  const auto x = crnn::test::sine(1000.0, 16000, 0.2);
  const auto feats = compute_fbank(torch::tensor(x));
  const auto peak = feats.mean(0).argmax().item<int64_t>();
  EXPECT_EQ(peak, 8);
  // Hand check of the banks themselves: bin 8's triangle peaks at
  // 700 (exp(967.8/1127) - 1) = 952 Hz, i.e. FFT bin 952 / 31.25 = 30.5 -> 30.
  const auto banks = mel_banks(FbankOptions());
  EXPECT_EQ(banks.sizes(), (std::vector<int64_t>{26, 257}));
  EXPECT_EQ(banks[8].argmax().item<int64_t>(), 30);
  EXPECT_EQ(banks.index({torch::indexing::Slice(), 256}).abs().sum().item<float>(), 0.0f);
}

TEST(Fbank, InputScaleShiftsLogPowerByTwoLogScale) {
  // Power scales with the square of the amplitude: log energies move by
  // 2 ln(32768) = 20.794 when input_scale goes from 1 to 32768, as long as no
  // energy is near the floor (white noise fills every bin).
  torch::manual_seed(7);
  const auto x = 0.3 * torch::randn({1600});
  const auto a = compute_fbank(x, FbankOptions().input_scale(1.0));
  const auto b = compute_fbank(x);
  EXPECT_NEAR((b - a).min().item<double>(), 2.0 * std::log(32768.0), 1e-3);
  EXPECT_NEAR((b - a).max().item<double>(), 2.0 * std::log(32768.0), 1e-3);
}

TEST(Fbank, RejectsBadOptions) {
  EXPECT_THROW(compute_fbank(torch::zeros({2, 400})), c10::Error);
  EXPECT_THROW(compute_fbank(torch::zeros({800}), FbankOptions().high_freq(9000)), c10::Error);
  EXPECT_THROW(compute_fbank(torch::zeros({800}), FbankOptions().num_bins(1)), c10::Error);
  // A meta tensor (shapes only) is named as such, not LibTorch's "cannot copy out of meta tensor".
  EXPECT_TRUE(crnn::test::contains(crnn::test::error_of([] { compute_fbank(torch::empty({800}, torch::kMeta)); }),
                                   "compute_fbank: a meta tensor holds no samples"));
  EXPECT_THROW(parse_window_type("kaiser"), c10::Error);
  EXPECT_EQ(parse_window_type("hamming"), WindowType::Hamming);
}

TEST(Fbank, FeatureNamesAreZeroPadded) {
  const auto names = fbank_feature_names(26);
  ASSERT_EQ(names.size(), 26u);
  EXPECT_EQ(names.front(), "fbank_00");
  EXPECT_EQ(names.back(), "fbank_25");
}

// describe() and parse_description() are inverses; a description with options no
// extractor could use (a damaged model or feature file) is rejected when read.
TEST(Fbank, DescriptionRoundTripsAndRejectsUnusableOptions) {
  const auto o = FbankOptions().num_bins(40).sample_rate(8000).window(WindowType::Hamming).snip_edges(false);
  EXPECT_EQ(describe(parse_description(describe(o) + " resampler=soxr-vhq")), describe(o));
  auto error_of = [](const std::string& d) {
    try {
      parse_description(d);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error_of("kaldi-fbank sample_rate=0").find("sample_rate must be in 1..1000000 Hz, got 0"), std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank sample_rate=99999999999").find("got 99999999999"), std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank num_bins=1").find("num_bins must be at least 3"), std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank frame_shift_ms=0").find("frame_shift_ms must be in (0, 100000] ms, got 0"),
            std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank frame_shift_ms=0.05").find("less than one sample"), std::string::npos);  // 0.8 samples
  EXPECT_NE(error_of("mfcc num_ceps=13").find("not a kaldi-fbank description"), std::string::npos);
  // A value that is not a whole number names the field, and a number with a tail is no number.
  EXPECT_EQ(error_of("kaldi-fbank num_bins=abc"), "fbank description: bad value in 'num_bins=abc'");
  EXPECT_EQ(error_of("kaldi-fbank num_bins=26abc"), "fbank description: bad value in 'num_bins=26abc'");
  EXPECT_EQ(error_of("kaldi-fbank frame_shift_ms=10ms"), "fbank description: bad value in 'frame_shift_ms=10ms'");
  EXPECT_EQ(error_of("kaldi-fbank window=triangle"), "fbank description: bad value in 'window=triangle'");
  // A scale of 0 would give constant features, NaN ones NaN features; a frame length
  // of NaN would be cast to a sample count.
  EXPECT_NE(error_of("kaldi-fbank input_scale=0").find("input_scale must be a positive finite number, got 0"),
            std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank input_scale=nan").find("input_scale must be a positive finite number"),
            std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank preemphasis=nan").find("preemphasis must be in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank preemphasis=1.5").find("preemphasis must be in [0, 1], got 1.5"), std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank frame_length_ms=nan").find("frame_length_ms must be a finite number"),
            std::string::npos);
  EXPECT_NE(error_of("kaldi-fbank frame_length_ms=1e300").find("frame_length_ms must be in (0, 100000] ms, got 1e+300"),
            std::string::npos);
  EXPECT_EQ(error_of(describe(FbankOptions().preemphasis(0.0))), "(accepted)");
}

// Too many mel bins for the FFT: a triangle that holds no FFT bin would be a
// constant log-floor column. Refused, as Kaldi refuses it; which counts are
// refused follows from a direct count of FFT bins inside each triangle
// (16 kHz, 512-point FFT, 20 Hz to Nyquist).
TEST(Fbank, BinCountsWhoseTrianglesHoldNoFftBinAreRefused) {
  auto mel = [](double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); };
  const auto wave = torch::tensor(crnn::test::sine(440, 16000, 0.5));
  for (int64_t n : {26, 40, 64, 80, 100, 128, 200, 256}) {
    const double lo = mel(20.0), delta = (mel(8000.0) - lo) / static_cast<double>(n + 1);
    int64_t empty = 0;
    for (int64_t b = 0; b < n; ++b) {
      const double left = lo + b * delta, right = lo + (b + 2) * delta;
      bool any = false;
      for (int j = 0; j < 256 && !any; ++j) any = mel(j * 31.25) > left && mel(j * 31.25) < right;
      empty += !any;
    }
    const auto o = FbankOptions().num_bins(n);
    if (empty == 0) {
      const auto f = compute_fbank(wave, o);
      EXPECT_EQ(f.size(1), n);
    } else {
      try {
        compute_fbank(wave, o);
        ADD_FAILURE() << n << " bins: no error, " << empty << " empty";
      } catch (const c10::Error& e) {
        EXPECT_TRUE(crnn::test::contains(e.what_without_backtrace(),
                                         "num_bins = " + std::to_string(n) + " is too many for a 512-point FFT at 16000 Hz: " +
                                             std::to_string(empty) + " mel bin(s)"))
            << e.what_without_backtrace();
      }
    }
    if (n == 80) EXPECT_EQ(empty, 0);  // the common 80-bin setting stays usable
    if (n == 256) EXPECT_GT(empty, 0);
  }
}

// A long input is computed in blocks of kFbankBlockFrames frames: each frame,
// on either side of a block boundary, is still the frame of its own 25 ms of
// audio, computed alone (with and without snip_edges, where reflection padding
// only touches the first and last frames).
TEST(Fbank, BlocksOfALongInputGiveEachFrameAsComputedAlone) {
  torch::manual_seed(5);
  const int64_t frames = 2 * kFbankBlockFrames + 300;
  const auto wave = torch::rand({(frames - 1) * 160 + 400}) - 0.5;
  for (const bool snip : {true, false}) {
    const auto o = FbankOptions().snip_edges(snip);
    const auto all = compute_fbank(wave, o);
    ASSERT_EQ(all.size(0), num_frames(wave.size(0), o));
    for (const int64_t f : {int64_t{1}, kFbankBlockFrames - 1, kFbankBlockFrames, 2 * kFbankBlockFrames + 5}) {
      // Without snip_edges frame f starts half a shift minus half a frame earlier.
      const int64_t start = f * 160 + (snip ? 0 : 80 - 200);
      const auto alone = compute_fbank(wave.slice(0, start, start + 400), FbankOptions());
      ASSERT_EQ(alone.size(0), 1);
      EXPECT_TRUE(torch::allclose(all[f], alone[0], 1e-5, 1e-4)) << "frame " << f << (snip ? "" : " (no snip_edges)");
    }
  }
}

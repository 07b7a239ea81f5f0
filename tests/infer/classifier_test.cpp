// infer::Classifier on inputs a user can get wrong: features that are not a
// matrix, hold NaN, or are missing with no audio path; waveforms that are
// integer PCM, unscaled, or hold NaN. Each gets an error naming the input,
// never an ordinary-looking label.
#include "crnn/infer/classifier.h"

#include <gtest/gtest.h>

#include "crnn/audio/fbank.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"

using namespace crnn;

TEST(Classifier, BadFeaturesGiveAnErrorNamingTheInputNotALabel) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  auto good = torch::randn({30, 4});
  auto nan = good.clone();
  nan[7][2] = NAN;
  std::vector<infer::Input> in(4);
  in[0].id = "good", in[0].features = good;
  in[1].id = "nan", in[1].features = nan;
  in[2].id = "batched", in[2].features = good.unsqueeze(0);
  in[3].id = "nothing";
  const auto out = c.predict(in);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].error, "");
  EXPECT_FALSE(out[0].label.empty());
  EXPECT_EQ(out[1].error, "nan: features hold 1 NaN or infinite value(s), the first at frame 7, feature 2");
  EXPECT_EQ(out[2].error, "batched: features must be frames × features (2-D), got shape [1, 30, 4]");
  EXPECT_EQ(out[3].error, "nothing: no features, waveform or audio path given");
  for (size_t i = 1; i < 4; ++i) EXPECT_TRUE(out[i].label.empty()) << i;
}

// Features that are the same in every frame (silence) are classified, and
// flagged: their label carries no information.
TEST(Classifier, InputsWithoutSignalAreFlagged) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  std::vector<infer::Input> in(2);
  in[0].id = "speech", in[0].features = torch::randn({30, 4});
  in[1].id = "silence", in[1].features = torch::full({30, 4}, -15.94f);
  const auto out = c.predict(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[0].no_signal);
  EXPECT_TRUE(out[1].no_signal);
  EXPECT_FALSE(out[1].label.empty());
  EXPECT_EQ(out[1].error, "");
}

TEST(Classifier, WaveformsMustBeFloatSamplesInPlusMinusOne) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  const auto wave = torch::tensor(test::sine(300, 16000, 0.5));
  const auto expected = audio::compute_fbank(wave, audio::FbankOptions().num_bins(4));
  EXPECT_TRUE(torch::allclose(c.features_of_waveform(wave, 16000), expected));
  const auto pcm = (wave * 32767).round();
  auto message = [&](const torch::Tensor& x) {
    try {
      c.features_of_waveform(x, 16000);
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(test::contains(message(pcm.to(torch::kShort)), "must be floating point with samples in [-1, 1), got "
                                                              "Short (integer PCM: divide by 32768 for 16-bit)"))
      << message(pcm.to(torch::kShort));
  EXPECT_TRUE(test::contains(message(pcm), "samples reach |x| = 1638")) << message(pcm);
  auto x = wave.clone();
  x[10] = NAN;
  EXPECT_TRUE(test::contains(message(x), "1 NaN or infinite sample(s), the first at sample 10")) << message(x);
  EXPECT_TRUE(test::contains(message(wave.unsqueeze(0)), "expected a 1-D (mono) waveform, got shape [1, 8000]"));
  EXPECT_TRUE(test::contains(test::error_of([&] { c.features_of_waveform(wave, 0); }),
                             "features_of_waveform: sample_rate must be in 1..1000000 Hz, got 0 (not set)"));
}

// Audio already in memory: the same prediction as its features given directly,
// and an unscaled buffer is that input's error, not a label.
TEST(Classifier, AWaveformInputIsClassifiedAsItsFeaturesWouldBe) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  const auto wave = torch::tensor(test::sine(300, 16000, 0.5));
  std::vector<infer::Input> in(4);
  in[0].id = "buffer", in[0].waveform = wave, in[0].sample_rate = 16000;
  in[1].id = "features", in[1].features = c.features_of_waveform(wave, 16000);
  in[2].id = "pcm", in[2].waveform = (wave * 32767).round(), in[2].sample_rate = 16000;
  in[3].id = "no rate", in[3].waveform = wave;
  const auto out = c.predict(in);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3].error, "no rate: a waveform without its sample_rate (0)");
  EXPECT_EQ(out[0].error, "");
  EXPECT_EQ(out[0].probabilities, out[1].probabilities);
  EXPECT_EQ(out[0].frames, out[1].frames);
  EXPECT_DOUBLE_EQ(out[0].audio_seconds, 0.5);
  EXPECT_TRUE(test::contains(out[2].error, "samples reach |x| = 1638")) << out[2].error;
  EXPECT_FALSE(test::contains(out[2].error, "frame #")) << out[2].error;  // no C++ backtrace
  EXPECT_TRUE(out[2].label.empty());
}

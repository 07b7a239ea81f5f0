// infer::Classifier on inputs a user can get wrong: features that are not a
// matrix, hold NaN, or are missing with no audio path; waveforms that are
// integer PCM, unscaled, or hold NaN. Each gets an error naming the input,
// never an ordinary-looking label.
#include "crnn/infer/classifier.h"

#include <gtest/gtest.h>

#include "crnn/audio/fbank.h"
#include "crnn/infer/predictions.h"
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

// Windows over a long input, worked by hand: equal lengths, every frame in one,
// the last ending with the input.
TEST(Classifier, SegmentFramesCoverTheInputWithEqualWindows) {
  using Spans = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(infer::segment_frames(10, 4, 4), (Spans{{0, 4}, {4, 8}, {6, 10}}));
  EXPECT_EQ(infer::segment_frames(10, 4, 2), (Spans{{0, 4}, {2, 6}, {4, 8}, {6, 10}}));
  EXPECT_EQ(infer::segment_frames(9, 4, 3), (Spans{{0, 4}, {3, 7}, {5, 9}}));
  EXPECT_EQ(infer::segment_frames(8, 4, 4), (Spans{{0, 4}, {4, 8}}));
  EXPECT_EQ(infer::segment_frames(4, 4, 1), (Spans{{0, 4}}));
  EXPECT_EQ(infer::segment_frames(3, 5, 2), (Spans{{0, 3}}));  // shorter than a window: itself
  EXPECT_EQ(infer::segment_frames(0, 5, 2), Spans{});
  EXPECT_THROW(infer::segment_frames(10, 4, 5), c10::Error);
  EXPECT_THROW(infer::segment_frames(10, 0, 0), c10::Error);
}

// A segment is classified as its slice of the input normalized as a whole:
// back-to-back windows of one input (its own speaker) equal the slices given
// as inputs of one speaker (their joint statistics are the input's), and
// overlapping windows repeat the back-to-back ones where they coincide.
TEST(Classifier, SegmentsAreSlicesOfTheInputNormalizedAsAWhole) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  torch::manual_seed(3);
  const auto x = torch::randn({40, 4}) * 3 + torch::arange(40).unsqueeze(1) * 0.1;  // a drift across the input
  std::vector<infer::Input> in(3);
  in[0].id = "broken", in[0].features = torch::randn({5});
  in[1].id = "talk", in[1].features = x;
  in[2].id = "short", in[2].features = x.slice(0, 0, 6);
  infer::PredictOptions o;
  o.segment_seconds = 0.1;  // 10 frames at the 10 ms shift
  const auto out = c.predict(in, o);
  ASSERT_EQ(out.size(), 1u + 4u + 1u);
  EXPECT_EQ(out[0].id, "broken");
  EXPECT_EQ(out[0].segment, -1);
  EXPECT_FALSE(out[0].error.empty());
  EXPECT_EQ(out[5].id, "short");  // shorter than a window: one window, itself
  EXPECT_EQ(out[5].segment, 0);
  EXPECT_EQ(out[5].frames, 6);
  EXPECT_DOUBLE_EQ(out[5].end_seconds, 0.06);

  std::vector<infer::Input> slices(4);
  for (int64_t s = 0; s < 4; ++s) {
    slices[s].id = std::to_string(s), slices[s].speaker = "talk";
    slices[s].features = x.slice(0, 10 * s, 10 * s + 10);
  }
  const auto whole = c.predict(slices);
  for (int64_t s = 0; s < 4; ++s) {
    const auto& p = out[1 + s];
    EXPECT_EQ(p.id, "talk");
    EXPECT_EQ(p.segment, s);
    EXPECT_NEAR(p.start_seconds, 0.1 * s, 1e-12);
    EXPECT_NEAR(p.end_seconds, 0.1 * s + 0.1, 1e-12);
    EXPECT_EQ(p.frames, 10);
    EXPECT_EQ(p.label, whole[s].label);
    ASSERT_EQ(p.probabilities.size(), 2u);
    for (size_t k = 0; k < 2; ++k) EXPECT_NEAR(p.probabilities[k], whole[s].probabilities[k], 1e-6) << s;
  }
  // Unnormalized, the windows would differ: the test would not notice a window normalized on its own.
  const auto alone = c.predict({slices[3]});
  EXPECT_GT(std::abs(alone[0].probabilities[0] - out[4].probabilities[0]), 1e-4);

  o.hop_seconds = 0.05;  // windows at 0, 5, ..., 30 frames
  const auto overlapping = c.predict({in[1]}, o);
  ASSERT_EQ(overlapping.size(), 7u);
  for (size_t k = 0; k < 7; k += 2)
    for (size_t j = 0; j < 2; ++j)
      EXPECT_NEAR(overlapping[k].probabilities[j], out[1 + k / 2].probabilities[j], 1e-6) << k;
  EXPECT_NEAR(overlapping[1].start_seconds, 0.05, 1e-12);
}

TEST(Classifier, SegmentLengthsAreCheckedBeforeAnyWork) {
  test::TempDir dir;
  infer::Classifier c(test::save_tiny_model(dir).path);
  std::vector<infer::Input> in(1);
  in[0].id = "missing", in[0].path = dir.file("missing.wav");
  auto message = [&](double segment, double hop) {
    infer::PredictOptions o;
    o.segment_seconds = segment, o.hop_seconds = hop;
    return test::error_of([&] { c.predict(in, o); });
  };
  EXPECT_TRUE(test::contains(message(3, 4), "a hop of 4 s is longer than the segment (3 s)")) << message(3, 4);
  EXPECT_TRUE(test::contains(message(0.001, 0), "a segment of 0.001 s is shorter than one frame shift (0.01 s)"))
      << message(0.001, 0);
  EXPECT_TRUE(test::contains(message(0, 1), "a hop (1 s) needs a segment length")) << message(0, 1);
  for (const double bad : {static_cast<double>(NAN), static_cast<double>(INFINITY), 1e300, -1.0})
    EXPECT_TRUE(test::contains(message(bad, 0), "the segment must be a number of seconds > 0 and at most 1e+07, got"))
        << message(bad, 0);
  EXPECT_TRUE(test::contains(message(1, 0.001), "a hop of 0.001 s is shorter than one frame shift"));
}

// The files' segment fields: start and end after the speaker, in seconds to
// the frame shift's 10 ms; a failed input's row keeps the columns aligned.
TEST(Predictions, SegmentsCarryTheirSpanInJsonAndCsv) {
  infer::Prediction p;
  p.id = "talk", p.path = "talk.wav", p.label = "up", p.probabilities = {0.25f, 0.75f}, p.frames = 300;
  p.segment = 2, p.start_seconds = 6.0, p.end_seconds = 8.999999;
  EXPECT_EQ(infer::prediction_json_line(p, {"down", "up"}),
            "{\"id\":\"talk\",\"path\":\"talk.wav\",\"start\":6.0,\"end\":9.0,\"label\":\"up\","
            "\"probabilities\":{\"down\":0.25,\"up\":0.75},\"frames\":300}\n");
  EXPECT_EQ(infer::predictions_csv_header({"down", "up"}, true),
            "id,path,speaker,start,end,truth,label,frames,p_down,p_up,error,no_signal\n");
  EXPECT_EQ(infer::prediction_csv_row(p, 2, true), "talk,talk.wav,,6.00,9.00,,up,300,0.25,0.75,,0\n");
  infer::Prediction failed;
  failed.id = "x", failed.path = "x.wav", failed.error = "x.wav: unreadable";
  EXPECT_EQ(infer::prediction_csv_row(failed, 2, true), "x,x.wav,,,,,,,,,x.wav: unreadable,\n");
  // Whole inputs: the columns of before.
  EXPECT_EQ(infer::predictions_csv_header({"down", "up"}),
            "id,path,speaker,truth,label,frames,p_down,p_up,error,no_signal\n");
  p.segment = -1;
  EXPECT_EQ(infer::prediction_csv_row(p, 2), "talk,talk.wav,,,up,300,0.25,0.75,,0\n");
  EXPECT_EQ(infer::prediction_json_line(p, {"down", "up"}).find("start"), std::string::npos);
  // An input with no signal (every frame the same) is flagged in both files.
  p.no_signal = true;
  EXPECT_EQ(infer::prediction_csv_row(p, 2), "talk,talk.wav,,,up,300,0.25,0.75,,1\n");
  EXPECT_EQ(infer::prediction_json_line(p, {"down", "up"}),
            "{\"id\":\"talk\",\"path\":\"talk.wav\",\"label\":\"up\",\"probabilities\":{\"down\":0.25,"
            "\"up\":0.75},\"frames\":300,\"no_signal\":true}\n");
}

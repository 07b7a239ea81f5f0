// `crnn predict --segment/--hop`: a long recording as windows, each a row with
// its span; the options' errors in their own terms.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "train/tiny_corpus.h"

using crnn::test::contains;
using crnn::test::run_crnn;

namespace {

/// `seconds` of a rising tone (every frame different: no "no signal" note on stderr).
std::vector<float> chirp(double seconds) {
  std::vector<float> x(static_cast<size_t>(seconds * 16000));
  for (size_t n = 0; n < x.size(); ++n) {
    const double t = static_cast<double>(n) / 16000;
    x[n] = static_cast<float>(0.3 * std::sin(2 * M_PI * (200 + 300 * t) * t));
  }
  return x;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST(PredictCli, SegmentsOfALongRecordingAreRowsWithTheirSpans) {
  crnn::test::TempDir dir;
  const auto model = crnn::test::save_tiny_model(dir).path;
  // 2.5 s of audio: fbank frames of 25 ms every 10 ms, 1 + (40000 - 400) / 160 = 248 frames.
  crnn::test::write_audio(dir.file("talk.wav"), chirp(2.5), 16000, 1);
  auto r = run_crnn("--threads 1 predict '" + model + "' '" + dir.file("talk.wav") + "' --segment 1 --format csv");
  ASSERT_EQ(r.status, 0) << r.out;
  // Windows of 100 frames from 0 and 100, then the last one ending at frame 248.
  const auto rows = lines_of(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  EXPECT_EQ(rows[0], "id,path,speaker,start,end,truth,label,frames,p_down,p_up,error,no_signal");
  EXPECT_TRUE(contains(rows[1], "talk," + dir.file("talk.wav") + ",,0.00,1.00,,")) << rows[1];
  EXPECT_TRUE(contains(rows[2], ",,1.00,2.00,,")) << rows[2];
  EXPECT_TRUE(contains(rows[3], ",,1.48,2.48,,")) << rows[3];
  for (size_t i = 1; i < 4; ++i) EXPECT_TRUE(contains(rows[i], ",100,")) << rows[i];

  // JSON lines: overlapping windows, a hop of 0.5 s.
  r = run_crnn("--threads 1 predict '" + model + "' '" + dir.file("talk.wav") + "' --segment 1 --hop 0.5");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto json = lines_of(r.out);
  ASSERT_EQ(json.size(), 4u) << r.out;  // from 0, 0.5 and 1.0 s, then 1.48-2.48
  EXPECT_TRUE(contains(json[1], "\"start\":0.5,\"end\":1.5,")) << json[1];
  EXPECT_TRUE(contains(json[3], "\"start\":1.48,\"end\":2.48,")) << json[3];

  // A file that fails among segmented ones: counted as one file, not per window.
  r = run_crnn("--threads 1 predict '" + model + "' '" + dir.file("talk.wav") + "' '" + dir.file("gone.wav") +
               "' --segment 1");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_TRUE(contains(r.out, "crnn predict: 1 of 2 file(s) failed")) << r.out;
}

// The library checks --segment/--hop once (PredictOptions); the CLI names the flags.
TEST(PredictCli, SegmentOptionsAreCheckedInTheirOwnTerms) {
  crnn::test::TempDir dir;
  const auto model = crnn::test::save_tiny_model(dir).path;
  crnn::test::write_audio(dir.file("a.wav"), chirp(0.5), 16000, 1);
  const std::string head = "--threads 1 predict '" + model + "' '" + dir.file("a.wav") + "' ";
  auto r = run_crnn(head + "--segment 1 --hop 2");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--segment/--hop: a hop of 2 s is longer than the segment (1 s): the audio between windows would go "
                              "unclassified"));
  r = run_crnn(head + "--hop 1");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--segment/--hop: a hop (1 s) needs a segment length")) << r.out;
  for (const std::string bad : {"0", "inf", "3s"}) {
    r = run_crnn(head + "--segment " + bad);
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_TRUE(contains(r.out, "--segment: must be a number of seconds > 0, got " + bad)) << r.out;
  }
}

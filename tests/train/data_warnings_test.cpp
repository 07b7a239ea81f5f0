// Data warnings (train/data_warnings.h): each names the rows, and the tiny
// corpus as made gives none of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crnn/data/feature_store.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"
#include "crnn/util/file_io.h"
#include "train/tiny_corpus.h"

using namespace crnn;

namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
}

/// load_run_data's log for the tiny corpus with its manifest replaced by `manifest_text`.
std::string warnings_of(test::TempDir& dir, const test::TinyCorpus& c, const std::string& manifest_text) {
  std::ofstream(dir.file("m.csv")) << manifest_text;
  auto cfg = train::RunConfig::parse(test::tiny_config(c), {"data.manifest=" + dir.file("m.csv")});
  std::ostringstream log;
  train::load_run_data(cfg.data, log);
  return log.str();
}

}  // namespace

TEST(DataWarnings, TheTinyCorpusAsMadeGivesNone) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  const auto log = warnings_of(dir, c, crnn::read_text_file(c.manifest));
  EXPECT_FALSE(test::contains(log, "warning")) << log;
  EXPECT_FALSE(test::contains(log, "note")) << log;
}

TEST(DataWarnings, SpeakersTypedTwoWaysAreNamedWithTheirSplits) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, "s0_c0_0.wav,spk0,", "s0_c0_0.wav,SPK5 ,");  // a training row, typed as test speaker spk5
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "data: warning: speakers 'SPK5 ' (" + dir.file("m.csv") +
                                      ":2: utterance 's0_c0_0', split train), 'spk5' (" + dir.file("m.csv") +
                                      ":62: utterance 's5_c0_0', split test) differ only in case, spaces, accents"))
      << log;
}

// A spreadsheet turns the speaker "05" into 5: named like a case variant, and
// only a leading zero counts ("spk5" and "spk50" are not alike).
TEST(DataWarnings, SpeakersThatDifferInLeadingZerosAreNamed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, "s0_c0_0.wav,spk0,", "s0_c0_0.wav,spk05,");  // a training row, typed as test speaker spk5
  replace_all(text, "s1_c0_0.wav,spk1,", "s1_c0_0.wav,spk50,");
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "speakers 'spk05' (")) << log;
  EXPECT_TRUE(test::contains(log, "split test) differ only in case, spaces, accents (or their Unicode form) or "
                                  "leading zeros")) << log;
  EXPECT_FALSE(test::contains(log, "'spk50'")) << log;
}

// The same name in NFC and NFD (a CSV built from macOS file names) is two ids
// that look alike: named like a case variant.
TEST(DataWarnings, SpeakersInTwoUnicodeFormsAreNamed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, "s0_c0_0.wav,spk0,", "s0_c0_0.wav,\xC3\xA7" "elik,");   // train: "çelik", U+00E7
  replace_all(text, "s5_c0_0.wav,spk5,", "s5_c0_0.wav,c\xCC\xA7" "elik,");  // test: "c" + U+0327
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "speakers 'c\xCC\xA7" "elik' [accents as combining marks, NFD] (")) << log;
  EXPECT_TRUE(test::contains(log, "split test), '\xC3\xA7" "elik' (")) << log;
  EXPECT_TRUE(test::contains(log, "split train) differ only in case, spaces, accents (or their Unicode form) or "
                                  "leading zeros")) << log;
}

TEST(DataWarnings, OneAudioFileBehindTwoRowsIsNamed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, "s5_c0_0,audio/s5_c0_0.wav,", "s5_c0_0,audio/s0_c0_0.wav,");  // test row, training audio
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "audio/s0_c0_0.wav is the audio of 2 rows: " + dir.file("m.csv") +
                                      ":2: utterance 's0_c0_0' (split train), " + dir.file("m.csv") +
                                      ":62: utterance 's5_c0_0' (split test)"))
      << log;
}

TEST(DataWarnings, NumbersAsLabelsAreSaidToBeClasses) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, ",up,", ",7,");
  replace_all(text, ",down,", ",25,");
  for (int s = 0; s < 6; ++s) replace_all(text, "s" + std::to_string(s) + "_c0_5,audio/s" + std::to_string(s) + "_c0_5.wav,spk" + std::to_string(s) + ",7,",
                                         "s" + std::to_string(s) + "_c0_5,audio/s" + std::to_string(s) + "_c0_5.wav,spk" + std::to_string(s) + ",40,");
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "data: note: the labels of task 'trend' are numbers (25, 40, 7); each distinct value "
                                  "is a class"))
      << log;
}

TEST(DataWarnings, AFarLongerTrainingUtteranceIsNamed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Append);
    store.write("long", torch::randn({2000, 4}));
    store.flush();
  }
  const auto log = warnings_of(dir, c, crnn::read_text_file(c.manifest) + "long,audio/long.wav,spk0,up,train\n");
  // Tiny-corpus utterances have 20-34 frames: median 27 or so, 2000 is ~74 times that.
  EXPECT_TRUE(test::contains(log, "data: warning: the longest training utterance, " + dir.file("m.csv") +
                                      ":74: utterance 'long', has 2000 frames,"))
      << log;
  EXPECT_TRUE(test::contains(log, "lower train.batch_size")) << log;
}

// A symbolic or hard link to a training file, in the test split, is the same
// audio (compared by inode); each row says by which path it names the file.
TEST(DataWarnings, ALinkToATrainingFileIsTheSameAudio) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::filesystem::create_directories(dir.file("audio"));
  std::ofstream(dir.file("audio/s0_c0_0.wav")) << "RIFF";
  std::filesystem::create_symlink("s0_c0_0.wav", dir.file("audio/link.wav"));
  std::string text = crnn::read_text_file(c.manifest);
  replace_all(text, "s5_c0_0,audio/s5_c0_0.wav,", "s5_c0_0,audio/link.wav,");  // test row → training audio
  const auto log = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(log, "audio/s0_c0_0.wav is the audio of 2 rows: " + dir.file("m.csv") +
                                      ":2: utterance 's0_c0_0' (split train, " + dir.file("audio/s0_c0_0.wav") +
                                      "), " + dir.file("m.csv") + ":62: utterance 's5_c0_0' (split test, " +
                                      dir.file("audio/link.wav") + ")"))
      << log;
  // A hard link is the same file too.
  std::filesystem::remove(dir.file("audio/link.wav"));
  std::filesystem::create_hard_link(dir.file("audio/s0_c0_0.wav"), dir.file("audio/link.wav"));
  const auto hard = warnings_of(dir, c, text);
  EXPECT_TRUE(test::contains(hard, "audio/s0_c0_0.wav is the audio of 2 rows")) << hard;
  // A copy is another file: no warning.
  std::filesystem::remove(dir.file("audio/link.wav"));
  std::ofstream(dir.file("audio/link.wav")) << "RIFF";
  const auto copy = warnings_of(dir, c, text);
  EXPECT_FALSE(test::contains(copy, "is the audio of")) << copy;
}

// Utterances whose every frame is the same (the fbank of digital silence is
// the log floor in every bin) are named with their split; a one-frame
// utterance and one with a single varying feature are not.
TEST(DataWarnings, UtterancesWithoutSignalAreNamed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Append);
    store.write("silent", torch::full({40, 4}, -15.942385f));
    store.write("one_frame", torch::randn({1, 4}));
    auto almost = torch::full({40, 4}, 2.0f);
    almost[20][3] = 2.5f;
    store.write("almost", almost);
    store.flush();
  }
  const auto log = warnings_of(dir, c,
                               crnn::read_text_file(c.manifest) +
                                   "silent,audio/silent.wav,spk5,up,test\none_frame,audio/one.wav,spk0,up,train\n"
                                   "almost,audio/almost.wav,spk0,down,train\n");
  EXPECT_TRUE(test::contains(log, "data: warning: 1 utterance(s) hold no signal: every frame identical (e.g. "
                                  "digital silence, DC, a steady tone or hum, or channels that cancel): " +
                                      dir.file("m.csv") + ":74: utterance 'silent' (split test); "))
      << log;
  EXPECT_FALSE(test::contains(log, "'one_frame' (split")) << log;
  EXPECT_FALSE(test::contains(log, "'almost' (split")) << log;
}

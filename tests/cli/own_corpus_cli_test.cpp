// "Your own corpus", end to end, as docs/own-corpus.md tells a new user to do
// it: a folder of WAVs and a CSV with id, path, speaker, label and split →
// features → a config from a preset → train (on exactly the CSV's split) →
// eval --predictions → predict (manifest, files, directory, list, stdin) →
// report. The corpus is generated here: two classes of tones in noise.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "crnn/data/manifest.h"
#include "crnn/train/run_files.h"
#include "crnn/util/file_io.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace crnn;

namespace {

/// 6 speakers (4 train, 1 valid, 1 test) × 2 classes × 4 utterances: class
/// "low" a 300 Hz tone, "high" a 1500 Hz tone, in noise, speakers differing
/// in loudness. Returns the manifest path; WAVs under dir/wav/.
std::string write_corpus(const test::TempDir& dir) {
  fs::create_directories(dir.path() / "wav" / "nested");
  std::ofstream m(dir.file("corpus.csv"));
  m << "id,path,speaker,label,split\n";
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  for (int s = 0; s < 6; ++s) {
    const std::string split = s < 4 ? "train" : (s == 4 ? "valid" : "test");
    for (int cls = 0; cls < 2; ++cls)
      for (int i = 0; i < 4; ++i) {
        const std::string id = fmt::format("spk{}_{}_{}", s, cls ? "high" : "low", i);
        auto x = test::sine(cls ? 1500.0 : 300.0, 16000, 0.3 + 0.05 * i, 0.1 + 0.1 * s);
        for (auto& v : x) v += noise(rng);
        const std::string rel = (i == 3 ? "wav/nested/" : "wav/") + id + ".wav";
        test::write_audio(dir.file(rel), x, 16000, 1);
        m << id << "," << rel << ",s" << s << "," << (cls ? "high" : "low") << "," << split << "\n";
      }
  }
  return dir.file("corpus.csv");
}

/// id → (label, probabilities) of a predictions CSV.
std::map<std::string, std::pair<std::string, std::vector<double>>> read_predictions(const std::string& path) {
  const auto records = data::csv::parse(crnn::read_text_file(path), path);
  std::map<std::string, std::pair<std::string, std::vector<double>>> out;
  const auto& h = records.at(0).fields;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r].fields;
    std::vector<double> probs;
    for (size_t c = 0; c < h.size(); ++c)
      if (h[c].rfind("p_", 0) == 0) probs.push_back(std::stod(f.at(c)));
    out[f.at(0)] = {f.at(4), probs};
  }
  return out;
}

}  // namespace

TEST(OwnCorpusCli, TrainsOnTheCsvsSplitAndPredictEqualsEval) {
  test::TempDir dir;
  const std::string manifest = write_corpus(dir);
  auto r = test::run_crnn("features " + manifest + " -o " + dir.file("corpus.h5"));
  ASSERT_EQ(r.status, 0) << r.out;

  // A preset's config: the data protocol follows the CSV (no folds in the dump).
  r = test::run_crnn("config dump emotion-clstm --set data.manifest=" + manifest + " --set data.features=" +
                     dir.file("corpus.h5") + " --set data.task=label --set train.max_epochs=3 --set train.threads=1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "folds = 0")) << r.out;
  dir.write("config.toml", r.out);
  // --check: the data as training loads it, and nothing else.
  r = test::run_crnn("train " + dir.file("config.toml") + " --check");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "data: split: the manifest's column 'split' (train / valid / test)")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "the data loads as training would load it (2 classes; train 32, valid 8, test 8 "
                                    "utterances); nothing was trained"))
      << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
  r = test::run_crnn("train " + dir.file("config.toml") + " --check --set data.task=nope");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(test::contains(r.out, "no label column 'nope'")) << r.out;
  r = test::run_crnn("train " + dir.file("config.toml") + " --check --set data.stratify_by=sex");
  EXPECT_TRUE(test::contains(r.out, "data.stratify_by: " + manifest + ": no label column 'sex' (label columns: label)"))
      << r.out;
  r = test::run_crnn("train " + dir.file("config.toml") + " --check --set data.manifest=missing.csv");
  EXPECT_TRUE(test::contains(r.out, "data.manifest: missing.csv: file not found (a relative path is taken from")) << r.out;
  r = test::run_crnn("train " + dir.file("config.toml") + " -o " + dir.file("run"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "data: split: the manifest's column 'split' (train / valid / test)")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "train 32 utt / 4 spk, valid 8 / 1, test 8 / 1")) << r.out;
  const auto summary = train::read_run_summary(dir.file("run/summary.json"));
  EXPECT_EQ(summary.train_utterances, 32);
  EXPECT_EQ(summary.test_speakers, 1);
  EXPECT_EQ(summary.split, "the manifest's column 'split' (train / valid / test)");

  // predict --manifest gives eval's per-utterance predictions.
  r = test::run_crnn("eval " + dir.file("run") + " --split test --predictions " + dir.file("eval.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  // eval says where its split came from, as train does.
  EXPECT_TRUE(test::contains(r.out, "crnn eval: split 'test': the manifest's split column, its test rows (8 rows)"))
      << r.out;
  r = test::run_crnn("predict " + dir.file("run") + " --manifest " + manifest + " --split test --format csv -o " +
                     dir.file("predict.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto from_eval = read_predictions(dir.file("eval.csv"));
  const auto from_predict = read_predictions(dir.file("predict.csv"));
  ASSERT_EQ(from_eval.size(), 8u);
  ASSERT_EQ(from_predict.size(), 8u);
  for (const auto& [id, e] : from_eval) {
    ASSERT_TRUE(from_predict.count(id)) << id;
    const auto& p = from_predict.at(id);
    EXPECT_EQ(p.first, e.first) << id;
    ASSERT_EQ(p.second.size(), 2u);
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(p.second[c], e.second[c], 1e-6) << id;
  }

  // Files, a directory (recursive; a non-audio file is reported and skipped,
  // hidden files and folders such as macOS "._x.wav" and ".git" are skipped),
  // a list file and stdin all classify the same files.
  dir.write("wav/notes.txt", "not audio\n");
  dir.write("wav/._spk5_low_0.wav", "\x05\x16\x07\x00 resource fork\n");
  dir.write("wav/.hidden/x.wav", "not audio either\n");
  r = test::run_crnn("predict " + dir.file("run") + " " + dir.file("wav") + " -o " + dir.file("dir.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "notes.txt: not an audio file extension")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "skipped 1 hidden file(s) in " + dir.file("wav"))) << r.out;
  const std::string lines = crnn::read_text_file(dir.file("dir.jsonl"));
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 48);
  dir.write("list.txt", dir.file("wav/spk5_low_0.wav") + "\n# a comment\n" + dir.file("wav/nested/spk5_high_3.wav") + "\n");
  r = test::run_crnn("predict " + dir.file("run") + " @" + dir.file("list.txt") + " --format csv");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "id,path,speaker,truth,label,frames,p_high,p_low,error,no_signal")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "spk5_high_3,")) << r.out;
  r = test::run_command("echo " + dir.file("wav/spk5_low_1.wav") + " | '" CRNN_BINARY "' predict " + dir.file("run") + " -");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"id\":\"spk5_low_1\"")) << r.out;
  // A missing file is that file's error (exit 3), not the end of the others.
  r = test::run_crnn("predict " + dir.file("run") + " " + dir.file("nope.wav") + " " + dir.file("wav/spk5_low_2.wav"));
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"error\"")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"id\":\"spk5_low_2\",\"path\"")) << r.out;
  EXPECT_FALSE(test::contains(r.out, "hold no signal")) << r.out;
  // Digital silence gets a label, and a note that the label means nothing.
  test::write_audio(dir.file("silence.wav"), std::vector<float>(8000, 0.0f), 16000, 1);
  r = test::run_crnn("predict " + dir.file("run") + " " + dir.file("silence.wav") + " " + dir.file("wav/spk5_low_2.wav"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "crnn predict: note: 1 input(s) hold no signal: every frame identical (e.g. "
                                    "digital silence, DC, a steady tone or hum, or channels that cancel): silence; "
                                    "their labels carry no information"))
      << r.out;

  // --speaker: the files are one speaker's, normalized together — exactly what
  // predict --manifest (and eval) give the test speaker's 8 utterances. Without
  // it, each file is its own speaker, and predict says so.
  std::string spk5_files;
  for (const auto& [id, p] : from_predict) spk5_files += " " + dir.file((id.back() == '3' ? "wav/nested/" : "wav/") + id + ".wav");
  r = test::run_crnn("predict " + dir.file("run") + spk5_files + " --speaker s5 --format csv -o " + dir.file("spk5.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_FALSE(test::contains(r.out, "note:")) << r.out;
  const auto together = read_predictions(dir.file("spk5.csv"));
  ASSERT_EQ(together.size(), from_predict.size());
  for (const auto& [id, p] : from_predict) {
    ASSERT_TRUE(together.count(id)) << id;
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(together.at(id).second[c], p.second[c], 1e-6) << id;
  }
  r = test::run_crnn("predict " + dir.file("run") + spk5_files + " --format csv");
  EXPECT_TRUE(test::contains(r.out, "crnn predict: note: each file is standardized with its own statistics")) << r.out;
  r = test::run_crnn("predict " + dir.file("run") + " --manifest " + manifest + " --speaker s5");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(test::contains(r.out, "--speaker is for audio inputs")) << r.out;
  r = test::run_crnn("predict " + dir.file("run") + spk5_files + " --split test");  // not silently ignored
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(test::contains(r.out, "--split test selects rows of a --manifest; audio inputs have no split")) << r.out;
  // Two inputs with one file name: each is named by its path, not both by the name.
  fs::create_directories(dir.path() / "copy");
  fs::copy_file(dir.file("wav/spk5_low_0.wav"), dir.file("copy/spk5_low_0.wav"));
  r = test::run_crnn("predict " + dir.file("run") + " " + dir.file("wav/spk5_low_0.wav") + " " +
                     dir.file("copy/spk5_low_0.wav") + " " + dir.file("wav/spk5_low_1.wav"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"id\":\"" + dir.file("copy/spk5_low_0.wav") + "\"")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"id\":\"" + dir.file("wav/spk5_low_0.wav") + "\"")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "\"id\":\"spk5_low_1\"")) << r.out;

  r = test::run_crnn("report " + dir.file("run"));
  EXPECT_EQ(r.status, 0) << r.out;
}

// End to end on tiny data through the command line: espeak-ng corpus →
// features → train → eval / predict / repeat / report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/small_synthetic_corpus.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using crnn::test::run_crnn;

namespace {

std::string tiny_config(const std::string& manifest, const std::string& features) {
  return R"([data]
manifest = ")" + manifest + R"("
features = ")" + features + R"("
task = "arousal"
[model]
recurrent_size = 8
dense_size = 8
average_last = 0
[[model.front_end]]
type = "blstm"
features = 6
hidden_size = 4
source = "output"
combine = "cell"
reduce = "max"
[train]
batch_size = 8
max_epochs = 2
seed = 1
)";
}

}  // namespace

TEST(PipelineCli, CorpusFeaturesTrainEvalPredictRepeatReport) {
  if (!crnn::test::espeak_available()) GTEST_SKIP() << "espeak-ng not installed (scripts/setup installs it)";
  crnn::test::TempDir dir;
  auto manifest = crnn::test::small_synthetic_corpus(dir);
  const std::string m = dir.file("corpus/manifest.csv"), f = dir.file("f.h5");
  auto r = run_crnn("--threads 2 features '" + m + "' -o '" + f + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ofstream(dir.file("c.toml")) << tiny_config(m, f);

  r = run_crnn("--threads 1 train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("test UA recall"), std::string::npos) << r.out;

  // eval: JSON with a confusion matrix whose counts add up to the test rows.
  r = run_crnn("eval '" + dir.file("run") + "' --split test --json '" + dir.file("e.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto e = nlohmann::json::parse(std::ifstream(dir.file("e.json")));
  int64_t total = 0;
  for (auto& row : e["confusion"])
    for (auto& c : row) total += c.get<int64_t>();
  int64_t test_rows = 0;
  for (const auto& u : manifest.utterances()) test_rows += u.split == "test";
  EXPECT_EQ(total, test_rows);
  EXPECT_EQ(e["labels"], nlohmann::json({"calm", "excited"}));

  // predict: one JSON line per file, probabilities summing to 1, the label the argmax.
  // (stdout only: stderr has the note that each file is its own speaker)
  r = crnn::test::run_command("('" CRNN_BINARY "' predict '" + dir.file("run/best.pt") + "' '" + manifest[0].path +
                              "' '" + manifest[1].path + "' 2>/dev/null)");
  ASSERT_EQ(r.status, 0) << r.out;
  std::stringstream lines(r.out);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    double sum = 0, best = -1;
    std::string best_label;
    for (auto& [k, v] : j["probabilities"].items()) {
      sum += v.get<double>();
      if (v.get<double>() > best) best = v.get<double>(), best_label = k;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(j["label"], best_label);
    ++n;
  }
  EXPECT_EQ(n, 2);
  // A bad file is reported in its line and in the exit status.
  std::ofstream(dir.file("text.wav")) << "not audio";
  r = run_crnn("predict '" + dir.file("run/best.pt") + "' '" + dir.file("text.wav") + "'");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_NE(r.out.find("\"error\""), std::string::npos) << r.out;
  // A file name that is not UTF-8 gets U+FFFD in its line, and the next file is still classified.
  r = run_crnn("predict '" + dir.file("run/best.pt") + "' '" + dir.file("bad\xffname.wav") + "' '" + manifest[0].path + "'");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_NE(r.out.find("bad\xEF\xBF\xBDname.wav: file not found"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"label\""), std::string::npos) << r.out;

  // --normalize auto follows the model's training normalization: this run is
  // per speaker, so a file is its own speaker ("utterance").
  auto predict = [&](const std::string& run, const std::string& mode) {
    auto p = run_crnn("predict '" + dir.file(run + "/best.pt") + "' '" + manifest[0].path + "' --normalize " + mode);
    EXPECT_EQ(p.status, 0) << p.out;
    return nlohmann::json::parse(p.out)["probabilities"];
  };
  EXPECT_EQ(predict("run", "auto"), predict("run", "utterance"));
  // A model trained with data.normalization = global gets the training set's
  // statistics; eval uses them too.
  r = run_crnn("--threads 1 train '" + dir.file("c.toml") + "' --set data.normalization=global --set train.max_epochs=1 -o '" +
               dir.file("run_global") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(predict("run_global", "auto"), predict("run_global", "global"));
  EXPECT_NE(predict("run_global", "auto"), predict("run_global", "utterance"));
  r = run_crnn("eval '" + dir.file("run_global") + "' --split valid --json '" + dir.file("eg.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto summary = nlohmann::json::parse(std::ifstream(dir.file("run_global/summary.json")));
  auto eg = nlohmann::json::parse(std::ifstream(dir.file("eg.json")));
  EXPECT_DOUBLE_EQ(eg["ua_recall"].get<double>(), summary["val_ua_recall"].get<double>());

  // repeat: two seeds, then a second call skips both.
  r = run_crnn("--threads 1 repeat '" + dir.file("c.toml") + "' --seeds 2 -o '" + dir.file("rep") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto rep = nlohmann::json::parse(std::ifstream(dir.file("rep/repeat.json")));
  ASSERT_EQ(rep["runs"].size(), 2u);
  const double a = rep["runs"][0]["test_ua_recall"], b = rep["runs"][1]["test_ua_recall"];
  EXPECT_NEAR(rep["test_ua_recall_mean"].get<double>(), (a + b) / 2, 1e-12);
  EXPECT_NEAR(rep["test_ua_recall_std"].get<double>(), std::abs(a - b) / std::sqrt(2.0), 1e-12);
  r = run_crnn("repeat '" + dir.file("c.toml") + "' --seeds 2 -o '" + dir.file("rep") + "'");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("already finished, skipping"), std::string::npos) << r.out;
  // Finished seeds of another config are not passed off as this one's.
  r = run_crnn("repeat '" + dir.file("c.toml") + "' --seeds 2 -o '" + dir.file("rep") + "' --set train.lr=0.01");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(dir.file("rep") + "/seed_1: finished with another config than this one"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[train] lr = 0.01"), std::string::npos) << r.out;

  r = run_crnn("report '" + dir.file("rep") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir.path() / "rep" / "report" / "index.html"));
}

// A model path that is missing, or a file that is not a crnn model: exit 2
// with a data error naming the file, for eval and predict alike.
TEST(PipelineCli, MissingOrCorruptModelIsADataError) {
  crnn::test::TempDir dir;
  const std::string missing = dir.file("none.pt");
  const std::string junk = dir.write("junk.pt", "this is not a model\n");
  for (const std::string cmd : {"eval", "predict"}) {
    const std::string tail = cmd == "predict" ? " " + dir.file("a.wav") : "";
    auto r = run_crnn(cmd + " " + missing + tail);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("data error: " + missing + ": model file not found"), std::string::npos) << r.out;
    r = run_crnn(cmd + " " + junk + tail);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("data error: " + junk + ": not a readable crnn model file"), std::string::npos) << r.out;
  }
}

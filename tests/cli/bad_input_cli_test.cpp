// Bad command-line input is a clear error with exit status 2 (usage or data
// error), never a crash or a silently wrong result.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "crnn/data/feature_store.h"
#include "crnn/train/config.h"
#include "crnn/train/repeat.h"
#include "crnn/train/trainer.h"
#include "crnn/util/threads.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"

namespace {

using namespace crnn;
using test::run_crnn;

TEST(BadInputCli, BenchNeedsAtLeastOneRepetition) {
  for (const char* reps : {"0", "-3"}) {
    auto r = run_crnn(std::string("bench --model emotion-conv --batch 1 --frames 8 --min-reps ") + reps);
    EXPECT_EQ(r.status, 2) << r.out;  // not a signal, not CLI11's own code
    EXPECT_NE(r.out.find("--min-reps"), std::string::npos) << r.out;
  }
}

// Numeric flags name their range in plain terms and refuse what would wrap
// (-1 into an unsigned seed) or stall (10000 threads); all are usage errors.
TEST(BadInputCli, NumericFlagsStateTheirRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"repeat x.toml -o y --seeds 0", "--seeds: must be an integer in 1..1000, got 0"},
      {"repeat x.toml -o y --first-seed -1", "--first-seed: must be an integer in 0..9223372036854775807, got -1"},
      {"eval r --batch-size abc", "--batch-size: must be an integer in 1..1048576, got abc"},
      {"prepare ravdess d -o m.csv --show-skipped -1", "--show-skipped: must be an integer in 0.."},
      {"--threads 10000 config dump emotion-clstm", "--threads: Value 10000 not in range 0 to 256"},
      {"bench --min-seconds nan", "--min-seconds: must be a number of seconds in 0..3600, got nan"},
      {"bench --model nope", "--model nope: unknown model preset (known: emotion-baseline"},
      {"eval r --split dev", "--split: dev not in {train,valid,test,all}"},
  };
  for (const auto& [args, message] : cases) {
    auto r = run_crnn(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("179769313486"), std::string::npos) << r.out;  // CLI11's double range
  }
}

// An empty value (an unset shell variable) is refused by name before it reaches
// the filesystem ("cannot make absolute path: Invalid argument []").
TEST(BadInputCli, EmptyValuesAreRefused) {
  for (const auto& [args, option] : std::vector<std::pair<std::string, std::string>>{
           {"prepare ravdess d -o ''", "--output"},
           {"repeat x.toml -o ''", "--output"},
           {"report ''", "DIR"},
           {"experiment x.toml -o y --shard ''", "--shard"}}) {
    auto r = run_crnn(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(option + ": an empty value is not allowed"), std::string::npos) << args << "\n" << r.out;
  }
}

// More threads than cores is allowed (up to 256) but slows everything down: warned.
TEST(BadInputCli, MoreThreadsThanCoresIsWarnedAbout) {
  const int cores = crnn::hardware_threads();
  if (cores >= crnn::kMaxThreads) GTEST_SKIP() << cores << " cores: no count above them is accepted";
  auto r = run_crnn("--threads " + std::to_string(cores + 1) + " config dump emotion-clstm");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("warning: --threads " + std::to_string(cores + 1) + " is more than the " +
                       std::to_string(cores) + " core(s) available"),
            std::string::npos)
      << r.out;
  r = run_crnn("--threads " + std::to_string(cores) + " config dump emotion-clstm");
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
}

TEST(BadInputCli, FeaturesSampleRateIsASpeechRate) {
  test::TempDir dir;
  const auto manifest = dir.write("m.csv", "id,path,speaker\na,a.wav,s1\n");
  for (const char* rate : {"0", "1000", "1000000000"}) {
    auto r = run_crnn("features '" + manifest + "' -o '" + dir.file("f.h5") + "' --sample-rate " + rate);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find(std::string("--sample-rate: Value ") + rate + " not in range 4000 to 192000"),
              std::string::npos)
        << r.out;
  }
}

TEST(BadInputCli, RepeatSeedsMustFitASignedSeed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir, 3, 1);
  auto cfg = train::RunConfig::parse(test::tiny_config(c));
  std::stringstream log;
  const uint64_t max = std::numeric_limits<int64_t>::max();
  auto msg = test::error_of([&] { train::repeat_runs(cfg, dir.file("r"), 1, max + 1, log); });
  EXPECT_NE(msg.find("the last seed must be <= 9223372036854775807"), std::string::npos) << msg;
  msg = test::error_of([&] { train::repeat_runs(cfg, dir.file("r"), 3, max - 1, log); });
  EXPECT_NE(msg.find("--first-seed 9223372036854775806 with --seeds 3"), std::string::npos) << msg;
}

// The demo's seed is written into a TOML config (signed 64-bit integers): one that
// does not fit is refused before any corpus is made, not after.
TEST(BadInputCli, DemoSeedMustFitASignedSeed) {
  test::TempDir dir;
  for (const char* seed : {"9223372036854775808", "-1"}) {
    auto r = run_crnn(std::string("demo --seed ") + seed + " -o '" + dir.file("demo") + "'");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("--seed"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(dir.file("demo"))) << seed;
  }
}

// eval scores only features made like the model's training features: another
// width, or the same width from another extractor setup, is a data error.
TEST(BadInputCli, EvalRejectsFeaturesTheModelWasNotTrainedOn) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1)), dir.file("run"), {}, log);
  auto in = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Read);
  // A copy of the training features with edited attributes and rows.
  auto copy = [&](const std::string& name, const std::function<void(data::FeatureAttributes&)>& edit_attrs,
                  const std::function<torch::Tensor(const torch::Tensor&)>& edit_rows) {
    const auto path = dir.file(name);
    auto out = data::FeatureStore::open(path, data::FeatureStore::Mode::Truncate);
    auto attrs = in.attributes();
    edit_attrs(attrs);
    out.set_attributes(attrs);
    for (const auto& id : in.ids()) out.write(id, edit_rows(in.read(id)));
    out.flush();
    return path;
  };
  // The same utterances with 5 values per frame instead of the model's 4.
  const auto wide = copy(
      "wide.h5", [](data::FeatureAttributes& a) { a.feature_names.push_back("f4"); },
      [](const torch::Tensor& x) { return torch::cat({x, x.narrow(1, 0, 1)}, 1); });
  auto r = run_crnn("--threads 1 eval '" + dir.file("run") + "' --features '" + wide + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(wide + ": features have 5 values per frame, the model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expects 4"), std::string::npos) << r.out;
  // The same width, recorded as made with another window.
  const auto other = copy(
      "other.h5", [](data::FeatureAttributes& a) { a.extractor += " window=hamming"; },
      [](const torch::Tensor& x) { return x; });
  r = run_crnn("--threads 1 eval '" + dir.file("run") + "' --features '" + other + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(other + ": features made with other options than"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("window=hamming"), std::string::npos) << r.out;
  // The training features themselves evaluate.
  r = run_crnn("--threads 1 eval '" + dir.file("run") + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  // A manifest of the test rows alone evaluates like the full one (no validation
  // set to carve from training rows it does not have).
  {
    std::ofstream m(dir.file("testonly.csv"));
    std::ifstream in(c.manifest);
    std::string line;
    std::getline(in, line);
    m << line << "\n";
    while (std::getline(in, line))
      if (line.size() > 5 && line.compare(line.size() - 5, 5, ",test") == 0) m << line << "\n";
  }
  auto only = run_crnn("--threads 1 eval '" + dir.file("run") + "' --manifest '" + dir.file("testonly.csv") + "'");
  EXPECT_EQ(only.status, 0) << only.out;
  const auto first_line = [](const std::string& s) { return s.substr(0, s.find('\n')); };
  EXPECT_EQ(first_line(only.out), first_line(r.out)) << only.out;
  // A label the model does not know: the file, line and utterance are named.
  {
    std::ifstream in(dir.file("testonly.csv"));
    std::stringstream all;
    all << in.rdbuf();
    std::string text = all.str();
    const auto at = text.find(",up,test");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 8, ",upp,test");
    std::ofstream(dir.file("typo.csv")) << text;
  }
  r = run_crnn("--threads 1 eval '" + dir.file("run") + "' --manifest '" + dir.file("typo.csv") + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "typo.csv:2: utterance 's5_c0_0': unknown label 'upp' for task 'trend'"))
      << r.out;
  // predict --manifest prints such a row's label as the truth, with a warning naming it.
  r = run_crnn("--threads 1 predict '" + dir.file("run") + "' --manifest '" + dir.file("typo.csv") + "'");
  EXPECT_TRUE(crnn::test::contains(
      r.out, "warning: " + dir.file("typo.csv") +
                 ":2: utterance 's5_c0_0': label 'upp' is not one of the model's classes (down, up)"))
      << r.out;
  // The run's features moved away: the key they came from, and the option that helps.
  std::filesystem::rename(c.features, c.features + ".moved");
  r = run_crnn("--threads 1 eval '" + dir.file("run") + "'");
  std::filesystem::rename(c.features + ".moved", c.features);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, c.features + ": file not found (data.features of the run's config; give "
                                                        "--features FILE to use another)"))
      << r.out;
  // A --json path that cannot be written is refused before evaluating.
  r = run_crnn("--threads 1 eval '" + dir.file("run") + "' --json '" + dir.file("run") + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(dir.file("run") + ": is a directory, not a file"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("UA recall"), std::string::npos) << r.out;
}

}  // namespace

// A corpus folder where every file is skipped: the reasons are printed before
// the error, since they are the explanation (here: video-modality RAVDESS names).
TEST(BadInputCli, PrepareWithEveryFileSkippedShowsWhy) {
  crnn::test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "rav" / "Actor_01");
  std::ofstream(dir.path() / "rav" / "Actor_01" / "02-01-05-01-01-01-01.wav") << "x";
  std::ofstream(dir.path() / "rav" / "Actor_01" / "clip.mp4") << "x";
  auto r = run_crnn("prepare ravdess '" + dir.file("rav") + "' -o '" + dir.file("m.csv") + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  const auto reason = r.out.find("02-01-05-01-01-01-01.wav: not audio-only speech (modality 02, channel 01)");
  const auto error = r.out.find("no utterances found in " + dir.file("rav") + ": 2 entries skipped (reasons above)");
  EXPECT_NE(reason, std::string::npos) << r.out;
  EXPECT_NE(error, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clip.mp4: not an audio file extension"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.csv")));
}

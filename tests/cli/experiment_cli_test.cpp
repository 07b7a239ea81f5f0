#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "crnn/data/manifest.h"
#include "crnn/train/experiment.h"
#include "crnn/train/run_files.h"
#include "crnn/util/progress.h"
#include "train/tiny_corpus.h"
#include "train/tiny_experiment.h"

using namespace crnn;
namespace fs = std::filesystem;

namespace {
using test::count;
using test::tiny_experiment;
using test::train_seed_1;
using test::write_tiny_experiment;
}  // namespace

// The command: --plan lists every run with its status; bad input exits 2
// with a message naming the file or option.
TEST(ExperimentCli, PlanListsRunsAndBadInputExitsTwo) {
  test::TempDir dir;
  const auto exp = write_tiny_experiment(dir, 1, 2).path;
  auto r = test::run_crnn("experiment " + exp + " -o " + dir.file("out") + " --plan");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(count(r.out, " todo "), 4u) << r.out;
  EXPECT_NE(r.out.find("4 runs in 2 distinct cells: 0 finished, 4 to do"), std::string::npos) << r.out;
  // With --shard, the shard's runs (index % 2 == 1) only.
  r = test::run_crnn("experiment " + exp + " -o " + dir.file("out") + " --plan --shard 1/2");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(count(r.out, " todo "), 2u) << r.out;
  EXPECT_NE(r.out.find("   1 todo "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("   3 todo "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 runs of shard 1/2 (4 in all) in 2 distinct cells: 0 finished, 2 to do"), std::string::npos)
      << r.out;
  // --results-only trains nothing and says how many runs its tables rest on.
  r = test::run_crnn("experiment " + exp + " -o " + dir.file("out") + " --results-only");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("results of 0 finished run(s) of 4 in"), std::string::npos) << r.out;

  r = test::run_crnn("experiment " + dir.file("missing.toml") + " -o " + dir.file("out"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("missing.toml: no such experiment file"), std::string::npos) << r.out;
  r = test::run_crnn("experiment " + exp + " -o " + dir.file("out") + " --shard 3");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--shard 3: expected K/N"), std::string::npos) << r.out;
  r = test::run_crnn("experiment " + exp + " -o " + dir.file("out") + " --shard 0/99999999999999999999");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--shard 0/99999999999999999999: number out of range"), std::string::npos) << r.out;
  const auto bad = dir.write("bad.toml", tiny_experiment(2, "  [[table.row]]\n  name = \"x\"\n  config = \"nope.toml\"\n"));
  r = test::run_crnn("experiment " + bad + " -o " + dir.file("out"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("t1 · x · trend"), std::string::npos) << r.out;
}

// --jobs with --time-limit: seed 1 of both rows finished and claims 10^6 s;
// with an hour's limit neither seed 2 starts. When only row 1's claims it, row
// 2's seed 2 starts in its place. A duration that does not parse is a usage error.
TEST(ExperimentCli, JobsWithTimeLimitStartNoRunThatWouldEndAfterIt) {
  test::TempDir dir;
  const auto exp = write_tiny_experiment(dir, 1, 2).path;
  train_seed_1(dir, dir.file("both"), {1e6, 1e6});
  auto r = test::run_crnn("--threads 2 experiment " + exp + " -o " + dir.file("both") + " --jobs 2 --time-limit 1h");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(count(r.out, "experiment: started "), 0u) << r.out;
  EXPECT_NE(r.out.find("trained 0, already finished 2, failed 0, not started 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not starting the remaining 2 run(s): each is estimated to end after the time limit (1:00:00)"),
            std::string::npos)
      << r.out;
  train_seed_1(dir, dir.file("one"), {1e6, -1});
  r = test::run_crnn("--threads 2 experiment " + exp + " -o " + dir.file("one") + " --jobs 2 --time-limit 1h");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(count(r.out, "experiment: started t1 · cell, last · trend, seed 2"), 0u) << r.out;
  EXPECT_EQ(count(r.out, "experiment: started t1 · hidden, last · trend, seed 2"), 1u) << r.out;
  EXPECT_NE(r.out.find("trained 1, already finished 2, failed 0, not started 1"), std::string::npos) << r.out;
  const auto p = train::plan_experiment(train::Experiment::from_file(exp), {});
  EXPECT_TRUE(fs::exists(dir.file("one/" + p.cells[p.grid[0][1][0]].dir + "/seed_2/summary.json")));
  for (const char* bad : {"soon", "0", "-1h"}) {
    r = test::run_crnn("experiment " + exp + " -o " + dir.file("one") + " --time-limit " + bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.out;
    EXPECT_NE(r.out.find(std::string("--time-limit ") + bad + ": expected a positive duration"), std::string::npos)
        << r.out;
  }
}

// --jobs 2 trains every run exactly once in worker processes, each run
// identical to the same run trained one after the other in one process (same
// seed, one thread each); the parent writes the table and a log per run. A
// data error in the workers (features file gone) stops further starts and
// exits 2, naming the run's log.
TEST(ExperimentCli, JobsTrainRunsInWorkerProcessesLikeASerialRun) {
  test::TempDir dir;
  const auto [c, exp] = write_tiny_experiment(dir, 2, 2);
  auto par = test::run_crnn("--threads 2 experiment " + exp + " -o " + dir.file("par") + " --jobs 2");
  ASSERT_EQ(par.status, 0) << par.out;
  EXPECT_NE(par.out.find("4 to train in 2 processes of 1 thread(s)"), std::string::npos) << par.out;
  EXPECT_EQ(count(par.out, "experiment: started "), 4u) << par.out;
  EXPECT_EQ(count(par.out, "experiment: finished "), 4u) << par.out;
  EXPECT_NE(par.out.find("trained 4, already finished 0, failed 0, not started 0"), std::string::npos) << par.out;
  auto ser = test::run_crnn("--threads 1 experiment " + exp + " -o " + dir.file("ser"));
  ASSERT_EQ(ser.status, 0) << ser.out;

  auto e = train::Experiment::from_file(exp);
  auto p = train::plan_experiment(e, {});
  for (const auto& job : p.jobs) {
    const std::string run = fmt::format("{}/seed_{}", p.cells[job.cell].dir, job.seed);
    const std::string log = fmt::format("{}/par/logs/{}-seed_{}.log", dir.path().string(),
                                        fs::path(p.cells[job.cell].dir).filename().string(), job.seed);
    ASSERT_TRUE(fs::exists(log)) << log;
    EXPECT_NE(crnn::read_text_file(log).find("test (best model)"), std::string::npos) << log;
    auto a = nlohmann::json::parse(crnn::read_text_file(dir.file("par/" + run + "/summary.json")));
    auto b = nlohmann::json::parse(crnn::read_text_file(dir.file("ser/" + run + "/summary.json")));
    for (const char* key : {"test_ua_recall", "test_wa", "val_ua_recall", "best_epoch", "epochs_run"})
      EXPECT_EQ(a[key], b[key]) << run << " " << key;
    // Every epoch's training loss (the metrics' second column) is the same.
    auto losses = [](const std::string& csv) {
      std::vector<std::string> out;
      std::istringstream in(csv);
      for (std::string line; std::getline(in, line);) out.push_back(line.substr(0, line.find(',', line.find(',') + 1)));
      return out;
    };
    EXPECT_EQ(losses(crnn::read_text_file(dir.file("par/" + run + "/metrics.csv"))),
              losses(crnn::read_text_file(dir.file("ser/" + run + "/metrics.csv"))))
        << run;
  }
  auto rp = nlohmann::json::parse(crnn::read_text_file(dir.file("par/results.json")));
  auto rs = nlohmann::json::parse(crnn::read_text_file(dir.file("ser/results.json")));
  EXPECT_EQ(rp["finished_runs"], 4);
  for (size_t r = 0; r < 2; ++r)
    for (const char* key : {"runs", "test_ua_recall", "test_ua_recall_mean", "test_ua_recall_std", "test_wa_mean"})
      EXPECT_EQ(rp["tables"][0]["cells"][r][0][key], rs["tables"][0]["cells"][r][0][key]) << key;

  // Nothing left to do: no worker starts.
  auto again = test::run_crnn("experiment " + exp + " -o " + dir.file("par") + " --jobs 2");
  EXPECT_EQ(again.status, 0) << again.out;
  EXPECT_EQ(count(again.out, "experiment: started "), 0u) << again.out;

  // Workers that fail with a data error: the parent starts no further runs.
  fs::remove(c.features);
  auto bad = test::run_crnn("--threads 2 experiment " + exp + " -o " + dir.file("bad") + " --jobs 2");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_EQ(count(bad.out, "experiment: started "), 2u) << bad.out;
  EXPECT_NE(bad.out.find("FAILED t1 · cell, last · trend, seed 1: exit code 2, see "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("not starting the remaining 2 run(s)"), std::string::npos) << bad.out;
  auto jobs0 = test::run_crnn("experiment " + exp + " -o " + dir.file("bad") + " --jobs 0");
  EXPECT_EQ(jobs0.status, 2);
  EXPECT_NE(jobs0.out.find("--jobs 0: must be >= 1"), std::string::npos) << jobs0.out;
}

// The committed paper experiment resolves (no data needed to plan): 4 + 4 + 4
// + 24 cells of which Table IV's "cell states, last" on emotion and "cell
// states, max" on age/gender are Tables I–III's CLSTM cells.

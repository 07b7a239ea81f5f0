// scripts/stage-finished-runs with the repository's own .gitignore: a finished
// run (summary.json) is staged without its model or temporary files, an
// unfinished run and the worker logs are not, and the results files are.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.h"

namespace fs = std::filesystem;
using crnn::test::run_command;

TEST(StageFinishedRuns, StagesFinishedRunsWithoutModelFilesOrLogs) {
  if (run_command("git --version").status != 0) GTEST_SKIP() << "git is not installed";
  crnn::test::TempDir dir;
  fs::create_directories(dir.path() / "scripts");
  fs::copy_file(std::string(CRNN_SOURCE_DIR) + "/scripts/stage-finished-runs", dir.path() / "scripts/stage-finished-runs");
  fs::copy_file(std::string(CRNN_SOURCE_DIR) + "/.gitignore", dir.path() / ".gitignore");
  const std::string cell = "results/paper/runs/emotion2-emotion-clstm-12f05132abee/";
  for (const char* f : {"seed_1/summary.json", "seed_1/metrics.csv", "seed_1/config.toml", "seed_1/eval_test.json",
                        "seed_1/best.pt", "seed_1/last.pt", "seed_1/best.pt.tmp", "seed_2/metrics.csv", "seed_2/last.pt", "repeat.json"})
    dir.write(cell + f, "x");
  for (const char* f : {"results/paper/logs/emotion2-seed_1.log", "results/paper/results.md", "results/paper/table1.svg"})
    dir.write(f, "x");
  // A test run from a git hook must not stage into the hook's repository.
  const std::string in = "cd '" + dir.str() + "' && unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE && ";
  ASSERT_EQ(run_command(in + "git init -q .").status, 0);
  auto r = run_command(in + "bash scripts/stage-finished-runs");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("the 1 finished runs in results/paper are staged"), std::string::npos) << r.out;
  r = run_command(in + "git diff --cached --name-only");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "results/paper/results.md\n" + cell + "repeat.json\n" + cell + "seed_1/config.toml\n" + cell +
                       "seed_1/eval_test.json\n" + cell + "seed_1/metrics.csv\n" + cell + "seed_1/summary.json\n" +
                       "results/paper/table1.svg\n");
  // Staging again adds nothing and still succeeds.
  r = run_command(in + "bash scripts/stage-finished-runs && git diff --cached --name-only | wc -l");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("are staged\n7\n"), std::string::npos) << r.out;
  r = run_command(in + "bash scripts/stage-finished-runs results/none");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("results/none/runs: no such directory"), std::string::npos) << r.out;
}

// util/subprocess: the one way crnn starts child processes (espeak-ng for the
// synthetic corpus, bench workers, experiment jobs).
#include "crnn/util/subprocess.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/test_support.h"

using crnn::ProcessResult;
using crnn::run_process;
using crnn::Stderr;
using crnn::SubprocessError;
using crnn::test::contains;
using crnn::test::error_of;

TEST(Subprocess, ExitStatusIsReported) {
  auto ok = run_process({"sh", "-c", "exit 0"});
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.signal, 0);
  auto failed = run_process({"sh", "-c", "exit 3"});
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.exit_code, 3);
  EXPECT_EQ(failed.signal, 0);
  EXPECT_EQ(failed.describe(), "exit status 3");
}

TEST(Subprocess, ASignalIsReportedAsSuch) {
  auto killed = run_process({"sh", "-c", "echo before; kill -9 $$; echo after"});
  EXPECT_FALSE(killed.ok());
  EXPECT_EQ(killed.signal, 9);
  EXPECT_EQ(killed.exit_code, -1);
  EXPECT_EQ(killed.output, "before\n");
  EXPECT_TRUE(contains(killed.describe(), "killed by signal 9"));
}

TEST(Subprocess, CapturesStdoutAndStderrOrLeavesStderrToTheParent) {
  auto both = run_process({"sh", "-c", "echo out; echo err >&2; echo out2"});
  EXPECT_EQ(both.output, "out\nerr\nout2\n");  // interleaved in the order written
  auto out_only = run_process({"sh", "-c", "echo out; echo err >&2; echo out2"}, Stderr::Inherit);
  EXPECT_EQ(out_only.output, "out\nout2\n");
  // More than a pipe's buffer (64 KiB): read while the child writes, no deadlock.
  auto big = run_process({"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"});
  EXPECT_EQ(big.output, std::string(300000, 'x'));
  // stdin is /dev/null: a program reading it ends at once.
  auto cat = run_process({"cat"});
  EXPECT_TRUE(cat.ok());
  EXPECT_EQ(cat.output, "");
}

TEST(Subprocess, ArgumentsArePassedVerbatimNotThroughAShell) {
  auto r = run_process({"printf", "%s|", "a b", "'q'", "$HOME", "*", ""});
  EXPECT_EQ(r.output, "a b|'q'|$HOME|*||");
}

TEST(Subprocess, AMissingOrNonExecutableProgramIsAClearError) {
  EXPECT_THROW(run_process({"crnn-no-such-program"}), SubprocessError);
  EXPECT_EQ(error_of([] { run_process({"crnn-no-such-program", "x"}); }), "'crnn-no-such-program' not found in PATH");
  EXPECT_EQ(error_of([] { run_process({"/nonexistent/prog"}); }), "'/nonexistent/prog' is not an executable file");
  crnn::test::TempDir dir;
  const std::string text = dir.write("not_a_program.sh", "echo hi\n");  // mode 644
  EXPECT_EQ(error_of([&] { run_process({text}); }), "'" + text + "' is not an executable file");
  EXPECT_EQ(error_of([&] { run_process({dir.str()}); }), "'" + dir.str() + "' is not an executable file");
  EXPECT_TRUE(contains(error_of([] { run_process({}); }), "no program given"));
}

TEST(Subprocess, FindExecutableSearchesPath) {
  const std::string sh = crnn::find_executable("sh");
  EXPECT_EQ(sh.front(), '/');
  EXPECT_EQ(std::filesystem::path(sh).filename(), "sh");
  EXPECT_EQ(crnn::find_executable("/bin/sh"), "/bin/sh");  // a path is taken as it is
}

// Several threads starting children at once (the synthetic corpus runs
// espeak-ng on `jobs` threads): each gets exactly its own child's output.
TEST(Subprocess, ConcurrentRunsKeepTheirOutputsApart) {
  constexpr int kThreads = 4, kRuns = 8;
  std::vector<std::vector<std::string>> outputs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t, &outputs] {
      for (int i = 0; i < kRuns; ++i)
        outputs[t].push_back(run_process({"sh", "-c", "echo $0; sleep 0.01; echo $0", std::to_string(t * 100 + i)})
                                 .output);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kRuns; ++i) {
      const std::string id = std::to_string(t * 100 + i);
      EXPECT_EQ(outputs[t][i], id + "\n" + id + "\n");
    }
}

// run_self and spawn_self start this very executable (here: the test binary,
// which lists its own tests).
TEST(Subprocess, RunSelfRunsThisExecutable) {
  auto r = crnn::run_self({"--gtest_list_tests", "--gtest_filter=Subprocess.RunSelfRunsThisExecutable"});
  EXPECT_TRUE(r.ok()) << r.describe() << r.output;
  EXPECT_TRUE(contains(r.output, "RunSelfRunsThisExecutable"));
}

TEST(Subprocess, SpawnSelfAppendsToTheLogAndWaitChildReturnsItsStatus) {
  crnn::test::TempDir dir;
  const std::string log = dir.write("child.log", "earlier line\n");
  const pid_t pid = crnn::spawn_self({"--gtest_list_tests", "--gtest_filter=Subprocess.SpawnSelf*"}, log);
  const auto [done, code] = crnn::wait_child();
  EXPECT_EQ(done, pid);
  EXPECT_EQ(code, 0);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().rfind("earlier line\n", 0), 0u) << text.str();
  EXPECT_TRUE(contains(text.str(), "SpawnSelfAppendsToTheLogAndWaitChildReturnsItsStatus"));


  // Exit codes, and 128 + the signal for a child a signal ended.
  for (const auto& [how, expected] : {std::pair<const char*, int>{"7", 7}, {"KILL", 128 + SIGKILL}}) {
    ::setenv("CRNN_SUBPROCESS_TEST_EXIT", how, 1);
    const pid_t child = crnn::spawn_self(
        {"--gtest_also_run_disabled_tests", "--gtest_filter=SubprocessHelper.DISABLED_EndsAsTheEnvironmentSays"}, log);
    const auto [ended, status] = crnn::wait_child();
    EXPECT_EQ(ended, child);
    EXPECT_EQ(status, expected) << how;
  }
  // wait_child_for gives up when no child has ended in time, and returns one that has.
  ::setenv("CRNN_SUBPROCESS_TEST_EXIT", "SLEEP", 1);
  const pid_t sleeper = crnn::spawn_self(
      {"--gtest_also_run_disabled_tests", "--gtest_filter=SubprocessHelper.DISABLED_EndsAsTheEnvironmentSays"}, log);
  EXPECT_EQ(crnn::wait_child_for(0.05, {sleeper}), std::make_pair(pid_t{0}, 0));
  EXPECT_EQ(crnn::wait_child_for(60, {sleeper}), std::make_pair(sleeper, 5));
  ::unsetenv("CRNN_SUBPROCESS_TEST_EXIT");
  EXPECT_TRUE(contains(error_of([&] { crnn::spawn_self({}, dir.file("no/such/dir/x.log")); }), "no/such/dir/x.log"));
  EXPECT_TRUE(contains(error_of([] { crnn::wait_child(); }), "waitpid"));  // no child left
}

// Not a test: the child of the test above, which ends as told (run only there,
// with --gtest_also_run_disabled_tests and the variable set; else it passes).
TEST(SubprocessHelper, DISABLED_EndsAsTheEnvironmentSays) {
  const char* how = std::getenv("CRNN_SUBPROCESS_TEST_EXIT");
  if (how == nullptr) return;
  if (std::string(how) == "KILL") ::raise(SIGKILL);
  if (std::string(how) == "SLEEP") {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::_Exit(5);
  }
  std::_Exit(std::atoi(how));
}

// Ctrl-C in the `crnn` command (util/interrupt.h): training stops after its
// current batch with a message saying how to go on, exit status 130, and the
// run resumes from its last finished epoch.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "crnn/util/file_io.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"

namespace fs = std::filesystem;

namespace {

/// Starts `crnn ARGS` with SIGINT at its default (as a command typed at a
/// terminal has it), its output in `log`.
pid_t start_crnn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(CRNN_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(CRNN_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits up to `seconds` for `path` to exist.
bool wait_for_file(const fs::path& path, double seconds = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

TEST(InterruptCli, CtrlCStopsTrainingAfterABatchAndTheRunResumes) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 2);
  const std::string run = dir.file("run"), log = dir.file("train.log");
  const pid_t pid = start_crnn({"--threads", "1", "train", dir.file("c.toml"), "--set", "train.max_epochs=100000",
                                "--set", "train.patience=100000", "-o", run},
                               log);
  ASSERT_TRUE(wait_for_file(fs::path(run) / "last.pt"));
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string out = crnn::read_text_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << out;  // not ended by the signal
  EXPECT_EQ(WEXITSTATUS(status), 130) << out;
  EXPECT_TRUE(crnn::test::contains(out, "crnn train: interrupted: " + run + ": interrupted in epoch ")) << out;
  EXPECT_TRUE(crnn::test::contains(out, "its last.pt holds the last finished epoch: resume the run to go on (crnn "
                                        "train --resume " + run + ")"))
      << out;
  EXPECT_FALSE(fs::exists(fs::path(run) / "summary.json"));
  // The finished epochs are kept: the resume trains one more.
  const auto rows = crnn::test::run_command("wc -l < '" + run + "/metrics.csv'");
  const int finished = std::stoi(rows.out) - 1;
  ASSERT_GE(finished, 1);
  const auto resumed =
      crnn::test::run_crnn("--threads 1 train --resume '" + run + "' --set train.max_epochs=" + std::to_string(finished + 1));
  EXPECT_EQ(resumed.status, 0) << resumed.out;
  EXPECT_TRUE(crnn::test::contains(resumed.out, "of " + std::to_string(finished + 1) + ", val UA")) << resumed.out;
}

// A command started with SIGINT ignored (`crnn train … &` in a script, where
// the terminal's Ctrl-C is meant for the script) keeps ignoring it.
TEST(InterruptCli, ABackgroundJobOfAScriptKeepsIgnoringCtrlC) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 2);
  const std::string run = dir.file("run");
  // The shell starts the background job with SIGINT ignored; it is sent SIGINT
  // once its first epoch is done (of 200: seconds of training still ahead) and
  // still finishes them all.
  const auto r = crnn::test::run_command(
      "sh -c \"'" + std::string(CRNN_BINARY) + "' --threads 1 train '" + dir.file("c.toml") +
      "' --set train.max_epochs=200 --set train.patience=1000 -o '" + run + "' > '" + dir.file("log") +
      "' 2>&1 & pid=\\$!; while [ ! -f '" + run + "/last.pt' ]; do sleep 0.01; done; kill -INT \\$pid; wait \\$pid\"");
  EXPECT_EQ(r.status, 0) << r.out << crnn::read_text_file(dir.file("log"));
  EXPECT_TRUE(crnn::test::contains(crnn::read_text_file(run + "/summary.json"), "\"epochs_run\": 200"));
}

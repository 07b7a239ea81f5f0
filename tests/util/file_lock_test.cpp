#include "crnn/util/file_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "support/test_support.h"

namespace {

int read_counter(const std::string& path) {
  std::ifstream in(path);
  int v = 0;
  in >> v;
  return v;
}

/// `processes` processes each add 1 to the number in `counter`, `rounds` times,
/// as read-modify-write (the pattern of rewriting a shared summary).
int count_with(const std::string& counter, const std::string& lock_path, int processes, int rounds, bool lock) {
  std::ofstream(counter) << 0;
  std::vector<pid_t> pids;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < rounds; ++i) {
        std::unique_ptr<crnn::FileLock> held;
        if (lock) held = std::make_unique<crnn::FileLock>(lock_path);
        const int v = read_counter(counter);
        usleep(50);  // widen the window a lost update needs
        std::ofstream(counter, std::ios::trunc) << v + 1;
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  return read_counter(counter);
}

}  // namespace

// Concurrent processes rewriting one file: with the lock no update is lost;
// without it some are (so the test can tell the difference).
TEST(FileLock, ConcurrentProcessesLoseNoUpdateUnderTheLock) {
  crnn::test::TempDir dir;
  EXPECT_EQ(count_with(dir.file("n"), dir.file(".lock"), 4, 100, /*lock=*/true), 400);
  EXPECT_LT(count_with(dir.file("n"), dir.file(".lock"), 4, 100, /*lock=*/false), 400);
}

TEST(FileLock, UnwritableLockFileIsAnErrorNamingIt) {
  EXPECT_TRUE(crnn::test::contains(crnn::test::error_of([] { crnn::FileLock l("/nonexistent-dir/x/.lock"); }),
                                   "/nonexistent-dir/x/.lock: cannot create the lock file"));
}

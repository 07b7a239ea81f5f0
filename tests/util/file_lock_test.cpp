#include "crnn/util/file_lock.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
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
/// as read-modify-write under the lock (the pattern of rewriting a shared summary).
int count_with(const std::string& counter, const std::string& lock_path, int processes, int rounds) {
  std::ofstream(counter) << 0;
  std::vector<pid_t> pids;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < rounds; ++i) {
        crnn::FileLock held(lock_path);
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

// Concurrent processes rewriting one file: with the lock no update is lost.
TEST(FileLock, ConcurrentProcessesLoseNoUpdateUnderTheLock) {
  crnn::test::TempDir dir;
  EXPECT_EQ(count_with(dir.file("n"), dir.file(".lock"), 4, 100), 400);
}

// The lock excludes, shown deterministically (a race-based "without the lock
// updates are lost" control is not: on a loaded machine the unlocked writers
// may happen not to interleave, or interleave into garbage): while this process
// holds the lock, another process asking for it waits, and gets it once the
// holder lets go.
TEST(FileLock, AnotherProcessWaitsUntilTheHolderReleases) {
  crnn::test::TempDir dir;
  const std::string lock_path = dir.file(".lock");
  int go[2], got[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(got), 0);
  const pid_t pid = fork();
  if (pid == 0) {  // forked before the parent locks: it inherits no locked descriptor
    close(go[1]);
    close(got[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    crnn::FileLock lock(lock_path);
    if (write(got[1], "L", 1) != 1) _exit(1);
    _exit(0);
  }
  close(go[0]);
  close(got[1]);
  auto lock = std::make_unique<crnn::FileLock>(lock_path);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  pollfd waiting{got[0], POLLIN, 0};
  EXPECT_EQ(poll(&waiting, 1, 500), 0) << "the other process took the lock while this one held it";
  lock.reset();
  pollfd acquired{got[0], POLLIN, 0};
  EXPECT_EQ(poll(&acquired, 1, 10000), 1) << "the other process did not get the lock after it was released";
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(go[1]);
  close(got[0]);
}

TEST(FileLock, UnwritableLockFileIsAnErrorNamingIt) {
  EXPECT_TRUE(crnn::test::contains(crnn::test::error_of([] { crnn::FileLock l("/nonexistent-dir/x/.lock"); }),
                                   "/nonexistent-dir/x/.lock: cannot create the lock file"));
}

// A directory's own lock, without waiting: a second holder is refused until
// the first releases; a directory that cannot be opened locks nothing.
TEST(FileLock, TryDirectoryRefusesASecondHolderUntilReleased) {
  crnn::test::TempDir dir;
  auto first = crnn::FileLock::try_directory(dir.path().string());
  ASSERT_TRUE(first);
  EXPECT_FALSE(crnn::FileLock::try_directory(dir.path().string()));
  first.reset();
  EXPECT_TRUE(crnn::FileLock::try_directory(dir.path().string()));
  EXPECT_TRUE(crnn::FileLock::try_directory(dir.file("missing")));  // nothing to lock: not refused
  EXPECT_FALSE(std::filesystem::exists(dir.file("missing")));
}

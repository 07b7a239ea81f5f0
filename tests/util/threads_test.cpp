#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "crnn/util/threads.h"

TEST(Threads, SetsLibTorchIntraOpThreads) {
  const int before = at::get_num_threads();
  EXPECT_EQ(crnn::set_num_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  // 0 means "all cores".
  EXPECT_EQ(crnn::set_num_threads(0), crnn::hardware_threads());
  EXPECT_EQ(at::get_num_threads(), crnn::hardware_threads());
  crnn::set_num_threads(before);
}

// A count given explicitly (--threads N, crnn.set_num_threads(N)) wins over a
// config's train.threads; 0 (all cores) lets configs set it again.
TEST(Threads, AnExplicitCountWinsOverTheConfigs) {
  const int before = at::get_num_threads();
  crnn::set_num_threads_from_config(1);
  EXPECT_EQ(at::get_num_threads(), 1);  // nothing explicit yet: the config's
  crnn::set_num_threads_explicitly(2);
  crnn::set_num_threads_from_config(1);
  EXPECT_EQ(at::get_num_threads(), 2);
  crnn::set_num_threads_from_config(0);  // a config without train.threads changes nothing
  EXPECT_EQ(at::get_num_threads(), 2);
  crnn::set_num_threads_explicitly(0);
  crnn::set_num_threads_from_config(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  crnn::set_num_threads(before);
}

// run_alongside: both parts run, the side part on one long-lived helper thread
// (the same on every call: no new thread per call), concurrently with the
// caller's part; exceptions come back, the caller's first; concurrent callers
// each get their own parts done (one of them runs both itself).
TEST(Threads, RunAlongsideUsesOneHelperThreadAndPropagatesErrors) {
  std::thread::id first_side, side_id;
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 3; ++i) {
    int here = 0, side = 0;
    crnn::run_alongside([&] { side = 1, side_id = std::this_thread::get_id(); }, [&] { here = 1; });
    EXPECT_EQ(here + side, 2);
    EXPECT_NE(side_id, caller);
    if (i == 0) first_side = side_id;
    EXPECT_EQ(side_id, first_side) << "a new thread on call " << i;
  }
  // Truly alongside: each part waits for the other to have started.
  std::atomic<int> started{0};
  auto meet = [&] {
    ++started;
    for (int spin = 0; started.load() < 2 && spin < 2000; ++spin) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  crnn::run_alongside(meet, meet);
  EXPECT_EQ(started.load(), 2);
  EXPECT_THROW(crnn::run_alongside([] { throw std::runtime_error("side"); }, [] {}), std::runtime_error);
  try {
    crnn::run_alongside([] { throw std::runtime_error("side"); }, [] { throw std::logic_error("here"); });
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "here");
  }
  // The helper still works after errors, and under two concurrent callers.
  std::atomic<int> done{0};
  auto caller_job = [&] {
    for (int i = 0; i < 200; ++i) {
      int a = 0, b = 0;
      crnn::run_alongside([&] { a = 1; }, [&] { b = 1; });
      if (a + b == 2) ++done;
    }
  };
  std::thread t1(caller_job), t2(caller_job);
  t1.join();
  t2.join();
  EXPECT_EQ(done.load(), 400);
}

// A forked child has no helper thread (fork keeps only the calling thread):
// run_alongside there must run both parts itself instead of waiting forever.
TEST(Threads, RunAlongsideInAForkedChildDoesNotWaitForALostHelper) {
  int warm = 0;
  crnn::run_alongside([&] { warm += 1; }, [&] { warm += 1; });  // the helper exists now
  ASSERT_EQ(warm, 2);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(20);  // a hang ends the child by SIGALRM, which the parent sees
    int a = 0, b = 0;
    crnn::run_alongside([&] { a = 1; }, [&] { b = 1; });
    _exit(a + b == 2 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

// bench/measure: median, the timing loop, resident memory (the SGEMM peak is
// checked where a benchmark runs, bench_test.cpp).
#include "crnn/bench/measure.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <thread>

using namespace crnn::bench;

TEST(BenchMeasure, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({7}), 7);
  EXPECT_THROW(median({}), std::invalid_argument);
}

TEST(BenchMeasure, TimeMedianWarmsUpThenTimesAtLeastMinRepsUpToTheCap) {
  int calls = 0;
  time_median([&] { ++calls; }, /*min_seconds=*/0.0, /*min_reps=*/5);
  EXPECT_EQ(calls, 1 + 5);  // one warm-up call, untimed
  calls = 0;
  time_median([&] { ++calls; }, /*min_seconds=*/3600.0, /*min_reps=*/1);
  EXPECT_EQ(calls, 1 + kMaxTimedCalls);  // min_seconds stops at the cap
  calls = 0;
  time_median([&] { ++calls; }, /*min_seconds=*/3600.0, /*min_reps=*/kMaxTimedCalls + 7);
  EXPECT_EQ(calls, 1 + kMaxTimedCalls + 7);  // min_reps does not
  const double s = time_median([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }, 0.0, 3);
  EXPECT_GE(s, 0.005);
  EXPECT_LT(s, 1.0);
}

TEST(BenchMeasure, ResidentMemoryGrowsWithTouchedMemory) {
  // Fresh pages straight from the kernel: a heap allocation could reuse pages
  // that earlier tests left resident.
  const size_t bytes = 32u << 20;
  const double before = current_rss_mb();
  EXPECT_GT(before, 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, bytes);  // every page written, so resident
  const double after = current_rss_mb();
  const double peak = peak_rss_mb();
  ::munmap(p, bytes);
  EXPECT_GE(after - before, 30.0) << before << " -> " << after;
  EXPECT_GE(peak + 0.5, after);
  EXPECT_LT(current_rss_mb(), after - 30.0);  // unmapped: no longer resident
}

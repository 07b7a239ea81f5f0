#include <ATen/Parallel.h>
#include <gtest/gtest.h>

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

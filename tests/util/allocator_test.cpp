#include <gtest/gtest.h>
#include <malloc.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>

#include "crnn/util/allocator.h"

namespace {

// Writes every page so that the allocation is really backed by memory.
void touch(char* p, size_t bytes) { std::memset(p, 1, bytes); }

}  // namespace

TEST(Allocator, LargeBuffersComeFromTheHeapAndStayThereAfterFree) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const char* opt_out = std::getenv("CRNN_KEEP_FREED_MEMORY");
  if ((tunables && std::strstr(tunables, "glibc.malloc.")) || std::getenv("MALLOC_MMAP_THRESHOLD_") ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") || (opt_out && std::strcmp(opt_out, "0") == 0))
    GTEST_SKIP() << "malloc is tuned through the environment; keep_freed_tensor_memory defers to it";
  ASSERT_TRUE(crnn::keep_freed_tensor_memory());

  constexpr size_t bytes = size_t{96} << 20;  // above glibc's largest adaptive mmap threshold (32 MiB)
  const struct mallinfo2 before = mallinfo2();
  char* p = static_cast<char*>(std::malloc(bytes));
  ASSERT_NE(p, nullptr);
  touch(p, bytes);
  const struct mallinfo2 held = mallinfo2();
  // Served from the main heap (arena), not by a private mmap (hblkhd): by
  // growing the heap, or from free heap space earlier tests left behind (this
  // binary also runs as one process), so growth plus free space consumed
  // covers the buffer.
  EXPECT_LT(held.hblkhd, before.hblkhd + bytes);
  const double grown = static_cast<double>(held.arena) - static_cast<double>(before.arena);
  const double reused = static_cast<double>(before.fordblks) - static_cast<double>(held.fordblks);
  EXPECT_GE(grown + reused, static_cast<double>(bytes - (size_t{1} << 20)))
      << "arena grew by " << grown << " bytes and free space shrank by " << reused;
  std::free(p);
  const struct mallinfo2 after = mallinfo2();
  // Kept for the next step instead of being returned to the kernel.
  EXPECT_GE(after.arena, held.arena);
  EXPECT_GE(after.fordblks, bytes);
  // The next allocation of that size reuses it: the heap does not grow.
  char* q = static_cast<char*>(std::malloc(bytes));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(mallinfo2().arena, after.arena);
  std::free(q);
}

TEST(Allocator, LeavesMallocAloneWhenTheUserOptsOut) {
  const char* old = std::getenv("CRNN_KEEP_FREED_MEMORY");
  setenv("CRNN_KEEP_FREED_MEMORY", "0", 1);
  EXPECT_FALSE(crnn::keep_freed_tensor_memory());
  if (old) setenv("CRNN_KEEP_FREED_MEMORY", old, 1); else unsetenv("CRNN_KEEP_FREED_MEMORY");
}

TEST(Allocator, LeavesMallocAloneWhenTheUserTunedIt) {
  const char* old = std::getenv("MALLOC_TRIM_THRESHOLD_");
  setenv("MALLOC_TRIM_THRESHOLD_", "131072", 1);
  EXPECT_FALSE(crnn::keep_freed_tensor_memory());
  if (old) setenv("MALLOC_TRIM_THRESHOLD_", old, 1); else unsetenv("MALLOC_TRIM_THRESHOLD_");
}

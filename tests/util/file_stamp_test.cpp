#include "crnn/util/file_stamp.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "crnn/util/file_io.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace {
void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }
void set_time(const std::string& path, fs::file_time_type t) { fs::last_write_time(path, t); }
}  // namespace

// The stamp is the file's size, time and the CRC-32 check value of its bytes.
TEST(FileStamp, RecordsSizeTimeAndTheCrcOfTheBytes) {
  crnn::test::TempDir dir;
  const std::string f = dir.file("a.bin");
  write_bytes(f, "123456789");
  const auto t = fs::file_time_type::clock::now() - std::chrono::hours(3);
  set_time(f, t);
  const crnn::FileStamp s = crnn::stamp_of_file(f);
  EXPECT_TRUE(s.known());
  EXPECT_EQ(s.bytes, 9);
  EXPECT_EQ(s.crc32, 0xCBF43926u);  // CRC-32's standard check value
  EXPECT_EQ(s.mtime_ns, std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  EXPECT_THROW(crnn::stamp_of_file(dir.file("missing.bin")), crnn::DataError);
  EXPECT_FALSE(crnn::FileStamp{}.known());
}

// make's rule (size and time) with a content check when only the time moved.
TEST(FileStamp, UnchangedSinceSeesRewritesOfTheSameSizeAndForgivesCopies) {
  crnn::test::TempDir dir;
  const std::string f = dir.file("a.wav");
  write_bytes(f, "RIFF-original-audio");
  const auto t0 = fs::file_time_type::clock::now() - std::chrono::hours(5);
  set_time(f, t0);
  const crnn::FileStamp s = crnn::stamp_of_file(f);
  EXPECT_TRUE(crnn::unchanged_since(s, f));

  // Copied (or touched): another time, the same bytes.
  set_time(f, t0 + std::chrono::minutes(7));
  EXPECT_TRUE(crnn::unchanged_since(s, f));

  // Rewritten in place with the same size (a normalized or re-recorded file).
  write_bytes(f, "RIFF-replaced-audio");
  ASSERT_EQ(fs::file_size(f), 19u);
  EXPECT_FALSE(crnn::unchanged_since(s, f));

  // Another size: changed whatever the time says.
  write_bytes(f, "RIFF-original-audio+");
  set_time(f, t0);
  EXPECT_FALSE(crnn::unchanged_since(s, f));

  // Nothing to compare: no stamp recorded, or the file is gone.
  EXPECT_TRUE(crnn::unchanged_since(crnn::FileStamp{}, f));
  fs::remove(f);
  EXPECT_TRUE(crnn::unchanged_since(s, f));
}

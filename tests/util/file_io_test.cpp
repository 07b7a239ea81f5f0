// util/file_io: the output-directory check that runs before long work.
#include "crnn/util/file_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/test_support.h"

using crnn::test::contains;
using crnn::test::error_of;

TEST(FileIo, AWritableDirectoryIsCreatedAndLeftClean) {
  crnn::test::TempDir dir;
  const std::string out = dir.file("a/b/c");
  crnn::ensure_writable_directory(out);
  EXPECT_TRUE(std::filesystem::is_directory(out));
  EXPECT_TRUE(std::filesystem::is_empty(out));  // the probe file is gone
  crnn::ensure_writable_directory(out);           // existing: fine
}

// (Root ignores permission bits, so "read-only" is a file in the way here; a
// read-only mount gives "cannot create the directory: Read-only file system".)
TEST(FileIo, ADirectoryThatCannotBeMadeIsADataErrorNamingIt) {
  crnn::test::TempDir dir;
  std::ofstream(dir.file("f")) << "x";
  EXPECT_TRUE(contains(error_of([&] { crnn::ensure_writable_directory(dir.file("f/sub")); }),
                       dir.file("f/sub") + ": cannot create the directory: "));
  EXPECT_TRUE(contains(error_of([&] { crnn::ensure_writable_directory(dir.file("f")); }),
                       dir.file("f") + ": "));
  EXPECT_THROW(crnn::ensure_writable_directory(dir.file("f")), crnn::DataError);
}

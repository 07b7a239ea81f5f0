// util/file_io: the output-directory check that runs before long work.
#include "crnn/util/file_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

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

// A pipe or device as the output (`-o /dev/stdout`, `--json /dev/null`) is
// written in place: renaming a temporary over it replaced /dev/null itself
// with a regular file (as root). A FIFO stands in for the device here.
TEST(FileIo, AnAtomicWriteToAPipeOrDeviceWritesIntoItAndKeepsIt) {
  crnn::test::TempDir dir;
  const std::string fifo = dir.file("pipe");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  crnn::write_text_file_atomic(fifo, "{\"ok\": true}\n");
  reader.join();
  EXPECT_EQ(got, "{\"ok\": true}\n");
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  // Several files at once, one of them the pipe (never the real /dev/null: a
  // regression would replace it for the whole machine).
  std::thread again([&] {
    std::ifstream in(fifo);
    got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  crnn::write_files_atomic({{fifo, "x"}, {dir.file("a.txt"), "a"}});
  again.join();
  EXPECT_EQ(got, "x");
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  EXPECT_EQ(crnn::read_text_file(dir.file("a.txt")), "a");
}

// kill -9 during an atomic write leaves ".NAME.tmp.PID": the next owner of the
// directory removes those of processes that are gone, and nothing else.
TEST(FileIo, StaleTemporariesOfGoneProcessesAreRemovedAndNothingElse) {
  crnn::test::TempDir dir;
  const std::string gone = dir.file(".last.pt.tmp.999999999");  // above any pid_max (2^22)
  const std::string alive = dir.file(".best.pt.tmp." + std::to_string(::getpid()));
  const std::string user = dir.file("notes.tmp.999999999"), other = dir.file(".hidden.tmp.x1");
  for (const auto& p : {gone, alive, user, other}) std::ofstream(p) << "x";
  crnn::remove_stale_temporaries(dir.file(""));
  EXPECT_FALSE(std::filesystem::exists(gone));
  for (const auto& p : {alive, user, other}) EXPECT_TRUE(std::filesystem::exists(p)) << p;
  crnn::remove_stale_temporaries(dir.file("missing"));  // no directory: nothing to do, no error
}

#pragma once
/// \file file_lock.h
/// An exclusive advisory lock on a file (flock), held for the lifetime of the
/// object: processes that write the same shared files — `crnn experiment
/// --shard K/N` processes on one output directory, possibly on several machines
/// over a shared file system — take it around "read what is finished, then
/// rewrite the summary", so that no writer replaces another's newer content
/// with an older view.
///
/// \code
///   {
///     crnn::FileLock lock(out_dir + "/.lock");   // waits for other holders
///     ... read runs, write results.md ...
///   }                                            // released
/// \endcode

#include <memory>
#include <string>

namespace crnn {

class FileLock {
 public:
  /// Creates `path` if missing and waits until the lock is ours. Throws
  /// DataError naming the file when it cannot be created or locked.
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  /// The lock of the existing directory `dir` itself (no file is created in
  /// it), without waiting: nullptr when another holder has it. Where the file
  /// system cannot lock directories (or `dir` cannot be opened) the returned
  /// object holds nothing: a lock that cannot be had does not stop the caller.
  ///
  /// \code
  ///   auto held = crnn::FileLock::try_directory("runs/clstm");
  ///   if (!held) ...  // another process holds runs/clstm
  /// \endcode
  static std::unique_ptr<FileLock> try_directory(const std::string& dir);

 private:
  FileLock() = default;
  int fd_ = -1;
};

}  // namespace crnn

#pragma once
/// \file file_io.h
/// Whole text files in and out, for every file format crnn owns (configs,
/// manifests, run files, reports): one reader, and one writer that never
/// leaves a half-written file under the final name.
///
/// \code
///   std::string text = crnn::read_text_file("configs/ravdess-emotion8-clstm.toml");
///   crnn::write_text_file_atomic("runs/x/summary.json", "{}\n");  // temp file + fsync + rename
/// \endcode

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crnn {

/// Bad input data or an unusable file: the user's to fix, so the message names
/// the file (and line or key) and the problem, with no C++ backtrace.
/// (`crnn::data::DataError` is this type.)
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file that could not be written (disk full, I/O error, no permission):
/// thrown by the writers below, naming the file. Lets a caller say how to go
/// on from what was kept (a training run: resume it).
class WriteError : public DataError {
 public:
  using DataError::DataError;
};

/// Reads a whole file; throws DataError naming it if it cannot be opened or read.
std::string read_text_file(const std::string& path);

/// Throws DataError unless `path` can name an output file: its directory exists
/// and it is not itself a directory. For checking an output flag before a long job.
void check_output_file_path(const std::string& path);

/// Writes `text` to `path` via a temporary file in the same directory, flushed
/// to disk, then renamed over `path`: a reader sees the old file or the new
/// one, never a part. On failure (disk full, permissions) the temporary file
/// is removed and DataError names the file.
void write_text_file_atomic(const std::string& path, const std::string& text);

/// Writes several files as one step: every file's content to its temporary
/// file first (flushed to disk), and only when all of them succeeded, each
/// renamed over its path in order. A failed write removes every temporary file
/// and leaves all the targets as they were, so files that must agree (a run's
/// best.pt and last.pt) never disagree after a disk-full or I/O error.
/// Contents are bytes (binary-safe).
///
/// Testing seam: with CRNN_FAULT_WRITE=NAME:N in the environment, the N-th
/// write of a file named NAME in this process fails as on a full disk (half
/// its bytes written, then ENOSPC), for the disk-full tests.
void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files);

/// The same testing seam for writers that do not go through the functions
/// above (the HDF5 feature store): true when this write of a file named like
/// `path` is the N-th of CRNN_FAULT_WRITE=NAME:N. The caller then fails as a
/// full disk would.
bool write_fault_injected(const std::string& path);

/// Creates the directory `dir` (and its parents) if needed and checks that a
/// file can be created in it, before hours of work are spent on it; throws
/// DataError naming it and the reason (read-only, no permission, a file in
/// the way).
void ensure_writable_directory(const std::string& dir);

/// Removes from `dir` the temporary files of the atomic writers above whose
/// process is gone (".last.pt.tmp.4242" after a kill -9 during a write); the
/// owner of a directory calls it when it takes the directory over (a resumed
/// run). Files of live processes and every other file are left alone.
void remove_stale_temporaries(const std::string& dir);

/// Flushes a file written by other means (a library's own writes) to disk, as
/// a rename into place needs first; false with errno set on failure.
bool sync_file(const std::string& path);

}  // namespace crnn

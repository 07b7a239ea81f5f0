#pragma once
/// \file file_stamp.h
/// What a file held when something was computed from it: its size,
/// modification time and the CRC-32 of its bytes. Records derived from a
/// file (the feature store's rows) keep its stamp, so that a file rewritten in
/// place since — a re-recorded, trimmed or normalized WAV under the same name
/// — is noticed instead of its old features being used.
///
/// Comparison (unchanged_since) works like make and rsync, with a content
/// check for copies: the same size and modification time mean unchanged; the
/// same size with another time (a corpus copied without preserving times)
/// means unchanged when the bytes' CRC-32 still matches.
///
/// \code
///   crnn::FileStamp s = crnn::stamp_of_file("a.wav");    // reads the file once
///   ...
///   if (!crnn::unchanged_since(s, "a.wav")) recompute();
/// \endcode

#include <cstdint>
#include <string>

namespace crnn {

struct FileStamp {
  int64_t bytes = -1;    ///< file size; -1: no stamp (recorded before stamps existed)
  int64_t mtime_ns = 0;  ///< modification time, ns since the file clock's epoch
  uint32_t crc32 = 0;    ///< CRC-32 (util/checksum.h) of the file's bytes
  bool known() const { return bytes >= 0; }
};

/// The stamp of `path` as it is now; reads the whole file. Throws DataError
/// naming the file if it cannot be read.
FileStamp stamp_of_file(const std::string& path);

/// False when `path` now holds other bytes than `recorded` describes (see the
/// file comment). True for an unknown stamp and for a file that cannot be
/// inspected (missing, unreadable): there is nothing to compare, and the
/// caller's own reading of the file reports those.
bool unchanged_since(const FileStamp& recorded, const std::string& path);

}  // namespace crnn

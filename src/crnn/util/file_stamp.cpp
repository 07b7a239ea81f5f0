#include "crnn/util/file_stamp.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <vector>

#include "crnn/util/checksum.h"
#include "crnn/util/file_io.h"

namespace crnn {
namespace fs = std::filesystem;
namespace {

// Size and time without reading; false if the file cannot be stat'ed.
bool size_and_time(const std::string& path, FileStamp* s) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (ec) return false;
  const auto time = fs::last_write_time(path, ec);
  if (ec) return false;
  s->bytes = static_cast<int64_t>(bytes);
  s->mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  return true;
}

// CRC-32 of the file's bytes; false if it cannot be read whole.
bool crc_of_file(const std::string& path, uint32_t* crc) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> buffer(1 << 20);
  uint32_t c = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    c = crnn::crc32(buffer.data(), static_cast<size_t>(in.gcount()), c);
  }
  if (in.bad()) return false;
  *crc = c;
  return true;
}

}  // namespace

FileStamp stamp_of_file(const std::string& path) {
  FileStamp s;
  if (!size_and_time(path, &s) || !crc_of_file(path, &s.crc32))
    throw DataError(path + ": cannot read the file");
  return s;
}

bool unchanged_since(const FileStamp& recorded, const std::string& path) {
  if (!recorded.known()) return true;
  FileStamp now;
  if (!size_and_time(path, &now)) return true;
  if (now.bytes != recorded.bytes) return false;
  if (now.mtime_ns == recorded.mtime_ns) return true;
  uint32_t crc = 0;
  return !crc_of_file(path, &crc) || crc == recorded.crc32;
}

}  // namespace crnn

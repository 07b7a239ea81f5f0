#pragma once
// Shared by the fuzz targets whose readers take a path, not bytes: each input
// is written to one file per process (in CRNN_FUZZ_TMPDIR, /dev/shm by
// scripts/fuzz so it stays in memory) and overwritten by the next input.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace crnn::fuzz {

inline std::string input_path(const char* suffix) {
  const char* dir = std::getenv("CRNN_FUZZ_TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/crnn-fuzz-" + std::to_string(getpid()) + suffix;
}

// Writes `data` to `path` whole or aborts: a short write would make the
// target read something other than the input libFuzzer recorded. A new file
// (unlink first), not the old one truncated: libhdf5 recognises files by inode,
// and one left open by a failed read must not stand in for the next input.
inline void write_input(const std::string& path, const uint8_t* data, size_t size) {
  ::unlink(path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

// The expected errors are swallowed; CRNN_FUZZ_VERBOSE=1 prints them (to see
// what a replayed input, `build-fuzz/fuzz_X FILE`, is refused with).
inline void expected_error(const std::exception& e) {
  static const bool verbose = std::getenv("CRNN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "expected error: %s\n", e.what());
}

}  // namespace crnn::fuzz

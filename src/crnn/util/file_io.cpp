#include "crnn/util/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <fmt/core.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace crnn {

std::string read_text_file(const std::string& path) {
  if (fs::is_directory(path)) throw DataError(fmt::format("{}: is a directory, not a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw DataError(fmt::format("{}: read error", path));
  return ss.str();
}

void check_output_file_path(const std::string& path) {
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: directory {} does not exist", path, dir.string()));
  if (fs::is_directory(target)) throw DataError(fmt::format("{}: is a directory, not a file", path));
}

namespace {

/// Testing seam for failed writes (disk full), read once from the environment:
/// CRNN_FAULT_WRITE=NAME:N makes the N-th atomic write (1-based) of a file whose
/// name is NAME, in this process, fail with ENOSPC after half its bytes.
struct WriteFault {
  std::string name;
  long at = 0;
  std::atomic<long> seen{0};
  WriteFault() {
    const char* spec = std::getenv("CRNN_FAULT_WRITE");
    if (!spec) return;
    const std::string s(spec);
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return;
    name = s.substr(0, colon);
    at = std::atol(s.c_str() + colon + 1);
  }
  /// Whether this write of `path` is the one to fail.
  bool hits(const fs::path& path) { return at > 0 && path.filename() == name && ++seen == at; }
};

WriteFault& write_fault() {
  static WriteFault f;
  return f;
}

/// write(2) all of `text` (short writes and EINTR continued), then fsync when
/// `sync` (not for devices and pipes, which cannot); false with errno set on
/// failure.
bool write_all(int fd, const std::string& text, bool sync, bool fail_halfway = false) {
  if (fail_halfway) {
    const std::string half = text.substr(0, text.size() / 2);
    if (::write(fd, half.data(), half.size()) < 0) return false;
    errno = ENOSPC;
    return false;
  }
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return !sync || ::fsync(fd) == 0;
}

}  // namespace

namespace {

fs::path temporary_of(const std::string& path) {
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  // Same directory as the target so that rename() is atomic (same file system).
  return dir / fmt::format(".{}.tmp.{}", target.filename().string(), ::getpid());
}

/// The PID in a name temporary_of made (".TARGET.tmp.PID"), or 0 for any other name.
pid_t temporary_pid(const std::string& name) {
  const auto at = name.rfind(".tmp.");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) return 0;
  const std::string pid_text = name.substr(at + 5);
  if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return static_cast<pid_t>(std::stol(pid_text));
}

/// Writes `text` to `tmp` and flushes it to disk; on failure removes `tmp` and
/// throws DataError naming `path`.
void write_temporary(const fs::path& tmp, const std::string& path, const std::string& text) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw WriteError(fmt::format("{}: cannot create (its temporary file {}): {}", path, tmp.string(),
                                std::strerror(errno)));
  const bool ok = write_all(fd, text, /*sync=*/true, write_fault().hits(path));
  const int write_errno = errno;
  const bool closed = ::close(fd) == 0;
  if (!ok || !closed) {
    const int err = ok ? errno : write_errno;
    std::error_code ec;
    fs::remove(tmp, ec);
    throw WriteError(fmt::format("{}: write failed: {}{}", path, std::strerror(err),
                                err == ENOSPC ? " (disk full)" : ""));
  }
}

void rename_into_place(const fs::path& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw WriteError(fmt::format("{}: cannot rename {} into place: {}", path, tmp.string(), ec.message()));
  }
}

}  // namespace

void ensure_writable_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(fmt::format("{}: cannot create the directory: {}", dir, ec.message()));
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: is not a directory", dir));
  const fs::path probe = fs::path(dir) / fmt::format(".write-check.{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw DataError(fmt::format("{}: cannot write in this directory: {}", dir, std::strerror(errno)));
  ::close(fd);
  fs::remove(probe, ec);
}

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const pid_t pid = temporary_pid(it->path().filename().string());
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // not a temporary, alive, or not ours to know
    std::error_code ignore;
    if (it->is_regular_file(ignore)) fs::remove(it->path(), ignore);
  }
}

bool sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

namespace {

/// A device or pipe (/dev/null, /dev/stdout, a FIFO): renaming a file over it
/// would replace the node itself (as root, `-o /dev/null` turned /dev/null
/// into a regular file for the whole machine), so it is written in place.
bool is_special_file(const std::string& path) {
  std::error_code ec;
  const auto type = fs::status(path, ec).type();
  return !ec && (type == fs::file_type::character || type == fs::file_type::block || type == fs::file_type::fifo ||
                 type == fs::file_type::socket);
}

void write_in_place(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw WriteError(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  const bool ok = write_all(fd, text, /*sync=*/false);
  const int err = errno;
  ::close(fd);
  if (!ok) throw WriteError(fmt::format("{}: write failed: {}", path, std::strerror(err)));
}

}  // namespace

void write_text_file_atomic(const std::string& path, const std::string& text) {
  if (is_special_file(path)) return write_in_place(path, text);
  check_output_file_path(path);
  const fs::path tmp = temporary_of(path);
  write_temporary(tmp, path, text);
  rename_into_place(tmp, path);
}

void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<fs::path> temporaries;
  try {
    for (const auto& [path, text] : files) {
      if (is_special_file(path)) continue;  // written in place below
      check_output_file_path(path);
      temporaries.push_back(temporary_of(path));
      write_temporary(temporaries.back(), path, text);
    }
  } catch (...) {
    for (const auto& t : temporaries) {
      std::error_code ec;
      fs::remove(t, ec);
    }
    throw;
  }
  size_t next = 0;
  for (const auto& [path, text] : files) {
    if (is_special_file(path)) write_in_place(path, text);
    else rename_into_place(temporaries[next++], path);
  }
}

bool write_fault_injected(const std::string& path) { return write_fault().hits(fs::path(path)); }

}  // namespace crnn

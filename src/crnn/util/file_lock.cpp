#include "crnn/util/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crnn/util/file_io.h"

namespace crnn {

FileLock::FileLock(const std::string& path) {
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw DataError(path + ": cannot create the lock file: " + std::strerror(errno));
  while (flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    close(fd_);
    fd_ = -1;
    throw DataError(path + ": cannot lock: " + std::strerror(err));
  }
}

std::unique_ptr<FileLock> FileLock::try_directory(const std::string& dir) {
  std::unique_ptr<FileLock> held(new FileLock());
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return held;
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const bool elsewhere = errno == EWOULDBLOCK;
    close(fd);
    return elsewhere ? nullptr : std::move(held);
  }
  held->fd_ = fd;
  return held;
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    close(fd_);
  }
}

}  // namespace crnn

#include "crnn/util/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace crnn {
namespace {

const char* const kSelf = "/proc/self/exe";

std::string errno_text(int err) { return std::strerror(err); }

/// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

struct Pipe {
  Fd read, write;
  explicit Pipe(const std::string& program) {
    int fds[2];
    // O_CLOEXEC: other threads start children concurrently; without it such a
    // child would inherit this pipe's write end and our read would never end.
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw SubprocessError("cannot create a pipe for '" + program + "': " + errno_text(errno));
    read.fd = fds[0];
    write.fd = fds[1];
  }
};

/// What the child gets: fds are dup2'ed onto 0, 1, 2 (-1: keep this process's).
struct ChildSpec {
  std::string path;               ///< the file to execute
  std::vector<std::string> argv;  ///< argv[0..] as the program sees it
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  bool die_with_parent = false;  ///< SIGTERM to the child when this process dies
};

/// fork + exec. An exec that fails is reported back through a close-on-exec
/// pipe, so a missing program is a SubprocessError here, not exit status 127 later.
pid_t start_child(const ChildSpec& spec) {
  // Everything the child needs is prepared before fork: between fork and exec
  // a multi-threaded parent's child may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Pipe exec_error(spec.argv.front());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw SubprocessError("cannot start '" + spec.argv.front() + "': fork failed: " + errno_text(errno));
  if (pid == 0) {
    if (spec.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    const int targets[3] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
    const int sources[3] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd};
    for (int i = 0; i < 3; ++i) {
      // dup2 clears close-on-exec on the target.
      if (sources[i] >= 0 && ::dup2(sources[i], targets[i]) < 0) {
        const int err = errno;
        (void)!::write(exec_error.write.fd, &err, sizeof err);
        ::_exit(127);
      }
    }
    ::execv(spec.path.c_str(), argv.data());
    const int err = errno;
    (void)!::write(exec_error.write.fd, &err, sizeof err);
    ::_exit(127);
  }
  exec_error.write.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(exec_error.read.fd, &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (err == ENOENT) throw SubprocessError("cannot run '" + spec.path + "': it does not exist");
    throw SubprocessError("cannot run '" + spec.path + "': " + errno_text(err));
  }
  return pid;
}

ProcessResult wait_for(pid_t pid, const std::string& program) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw SubprocessError("waitpid for '" + program + "' failed: " + errno_text(errno));
  }
  ProcessResult r;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

ProcessResult run_resolved(const std::string& path, std::vector<std::string> argv, Stderr stderr_to) {
  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.fd < 0) throw SubprocessError("cannot open /dev/null: " + errno_text(errno));
  Pipe out(argv.front());
  ChildSpec spec;
  spec.path = path;
  spec.argv = std::move(argv);
  spec.stdin_fd = null_in.fd;
  spec.stdout_fd = out.write.fd;
  spec.stderr_fd = stderr_to == Stderr::Capture ? out.write.fd : -1;
  const pid_t pid = start_child(spec);
  out.write.reset();  // only the child writes now: EOF when it is done
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(out.read.fd, buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ProcessResult r = wait_for(pid, spec.argv.front());
  r.output = std::move(output);
  return r;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string ProcessResult::describe() const {
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "killed by signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exit status " + std::to_string(exit_code);
}

std::string find_executable(const std::string& name) {
  if (name.empty()) throw SubprocessError("no program given (an empty name)");
  if (name.find('/') != std::string::npos) {
    if (is_executable_file(name)) return name;
    throw SubprocessError("'" + name + "' is not an executable file");
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  throw SubprocessError("'" + name + "' not found in PATH");
}

ProcessResult run_process(const std::vector<std::string>& argv, Stderr stderr_to) {
  if (argv.empty()) throw SubprocessError("run_process: no program given (empty argv)");
  return run_resolved(find_executable(argv.front()), argv, stderr_to);
}

ProcessResult run_self(const std::vector<std::string>& args, Stderr stderr_to) {
  std::vector<std::string> argv{"crnn"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_resolved(kSelf, std::move(argv), stderr_to);
}

namespace {

pid_t spawn_logged(const std::string& path, const std::string& argv0, const std::vector<std::string>& args,
                   const std::string& log_path) {
  Fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log.fd < 0) throw std::runtime_error(log_path + ": cannot open for writing: " + errno_text(errno));
  ChildSpec spec;
  spec.path = path;
  spec.argv = {argv0};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdout_fd = spec.stderr_fd = log.fd;
  spec.die_with_parent = true;
  return start_child(spec);
}

}  // namespace

pid_t spawn_self(const std::vector<std::string>& args, const std::string& log_path) {
  return spawn_logged(kSelf, "crnn", args, log_path);
}

pid_t spawn_program(const std::string& program, const std::vector<std::string>& args, const std::string& log_path) {
  return spawn_logged(program, program, args, log_path);
}

namespace {

/// A waitpid status as an exit code: the code, or 128 + the signal that ended it.
int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace

std::pair<pid_t, int> wait_child() {
  int status = 0;
  pid_t pid;
  do {
    pid = ::waitpid(-1, &status, 0);
  } while (pid < 0 && errno == EINTR);
  if (pid < 0) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  return {pid, exit_code_of(status)};
}

std::pair<pid_t, int> wait_child_for(double seconds, const std::vector<pid_t>& children) {
  if (children.empty()) throw std::runtime_error("wait_child_for: no child to wait for");
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::max(0.0, seconds));
  while (true) {
    for (pid_t child : children) {
      int status = 0;
      pid_t pid;
      do {
        pid = ::waitpid(child, &status, WNOHANG);
      } while (pid < 0 && errno == EINTR);
      if (pid < 0) throw std::runtime_error("waitpid(" + std::to_string(child) + "): " + std::strerror(errno));
      if (pid == child) return {pid, exit_code_of(status)};
    }
    if (std::chrono::steady_clock::now() >= end) return {0, 0};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace crnn

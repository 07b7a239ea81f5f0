#pragma once
/// \file subprocess.h
/// The one way crnn starts child processes: an argument vector, never a shell
/// string (arguments are passed verbatim, no quoting pitfalls).
///
/// - `run_process` runs a program to completion and captures its output
///   (the synthetic corpus runs espeak-ng this way);
/// - `run_self` does the same with this executable, for work that wants a
///   fresh process of its own (`crnn bench` times each model in one);
/// - `spawn_self` + `wait_child` start this executable in the background with
///   its output in a log file (`crnn experiment --jobs N` trains N runs at a
///   time this way).
///
/// \code
///   auto r = crnn::run_process({"espeak-ng", "--version"});
///   if (!r.ok()) throw std::runtime_error("espeak-ng: " + r.describe() + ": " + r.output);
///
///   pid_t pid = crnn::spawn_self({"--threads", "1", "train", "run.toml", "-o", "out"}, "out.log");
///   auto [done, code] = crnn::wait_child();  // code 0: success
/// \endcode

#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crnn {

/// A child process could not be started (missing or non-executable program,
/// no pipe, fork failed); the message names the program and the reason.
class SubprocessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How a finished child ended, and what it wrote.
struct ProcessResult {
  int exit_code = -1;  ///< its exit status, or -1 when a signal ended it
  int signal = 0;      ///< the signal that ended it, 0 when it exited
  std::string output;  ///< its stdout (and stderr, unless left to the parent's)

  /// Exited with status 0.
  bool ok() const { return signal == 0 && exit_code == 0; }
  /// "exit status 3" or "killed by signal 9 (Killed)", for error messages.
  std::string describe() const;
};

/// Where a child's stderr goes while its stdout is captured.
enum class Stderr {
  Capture,  ///< into ProcessResult::output, interleaved with stdout as written
  Inherit,  ///< this process's own stderr (warnings reach the user directly)
};

/// Runs `argv[0]` (a path if it contains a slash, else looked up in PATH) with
/// arguments `argv[1..]`, stdin from /dev/null, and waits for it. Safe to call
/// from several threads at once.
/// Throws SubprocessError when the program cannot be started: not found
/// ("'espeak-ng' not found in PATH"), not executable, or a failed system call.
/// A program that starts and then fails is not an error here: see the result.
ProcessResult run_process(const std::vector<std::string>& argv, Stderr stderr_to = Stderr::Capture);

/// run_process for this executable (/proc/self/exe), with `args` as its
/// argv[1..]: the same binary in a fresh address space.
ProcessResult run_self(const std::vector<std::string>& args, Stderr stderr_to = Stderr::Capture);

/// The program `name` would run as: `name` itself if it contains a slash and
/// is an executable file, else the first executable file `name` in PATH.
/// Throws SubprocessError saying which ("'x' not found in PATH", "'/a/x' is
/// not an executable file").
std::string find_executable(const std::string& name);

/// Starts this executable (/proc/self/exe) with `args` as argv[1..], its
/// stdout and stderr appended to `log_path` (created if missing). The child
/// receives SIGTERM when this process dies, so no orphan keeps training.
/// Throws std::runtime_error naming the log file or the failed call.
pid_t spawn_self(const std::vector<std::string>& args, const std::string& log_path);

/// spawn_self for `program` (a path; also its argv[0]) instead of this
/// executable: a Python front end's interpreter (sys.executable), which
/// /proc/self/exe does not name faithfully (a virtualenv's python resolves to
/// the base interpreter, without the virtualenv's packages).
pid_t spawn_program(const std::string& program, const std::vector<std::string>& args, const std::string& log_path);

/// Waits for any child to end; returns its pid and its exit code, or
/// 128 + the signal number when a signal ended it. Throws when there is no child.
/// (It may reap a child of a concurrent run_process: do not mix the two
/// across threads.)
std::pair<pid_t, int> wait_child();

/// Waits at most `seconds` for one of `children` to end (not any child: a
/// host process, Python say, may have children of its own); {0, 0} when none
/// ended by then.
std::pair<pid_t, int> wait_child_for(double seconds, const std::vector<pid_t>& children);

}  // namespace crnn

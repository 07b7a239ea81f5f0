#pragma once
/// \file subprocess.h
/// Child processes of this executable, for work that wants its own process
/// (its own thread pools and peak memory): `crnn experiment --jobs N` trains
/// N runs at a time this way.
///
/// \code
///   pid_t pid = crnn::spawn_self({"--threads", "1", "train", "run.toml", "-o", "out"}, "out.log");
///   auto [done, code] = crnn::wait_child();  // code 0: success
/// \endcode

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace crnn {

/// Starts this executable (/proc/self/exe) with `args` as argv[1..], its
/// stdout and stderr appended to `log_path` (created if missing). The child
/// receives SIGTERM when this process dies, so no orphan keeps training.
/// Throws std::runtime_error naming the log file or the failed call.
pid_t spawn_self(const std::vector<std::string>& args, const std::string& log_path);

/// Waits for any child to end; returns its pid and its exit code, or
/// 128 + the signal number when a signal ended it. Throws when there is no child.
std::pair<pid_t, int> wait_child();

}  // namespace crnn

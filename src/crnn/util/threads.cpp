#include "crnn/util/threads.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace crnn {
namespace {
// OpenBLAS is reached through libblas.so.3 (Debian alternatives); look the
// setter up at run time so that the build does not depend on which BLAS is
// selected. If it is absent (reference BLAS), there is nothing to set.
void set_openblas_threads(int n) {
  using SetFn = void (*)(int);
  static SetFn fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn) fn(n);
}
int get_openblas_threads() {
  using GetFn = int (*)();
  static GetFn fn = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn ? fn() : 1;
}
}  // namespace

int blas_num_threads() { return get_openblas_threads(); }

namespace {

/// The helper thread of run_alongside: one task at a time.
class SideThread {
 public:
  static SideThread& instance() {
    static SideThread* side = new SideThread();  // never destroyed: the thread may outlive main
    return *side;
  }

  /// Starts `task` unless the helper is claimed by another caller (from its
  /// try_start to the end of its wait); false then.
  bool try_start(const std::function<void()>* task) {
    // A forked child (a DataLoader worker, a probe) has no helper thread:
    // only the forking thread survives fork. It runs both parts itself.
    if (getpid() != pid_) return false;
    std::unique_lock<std::mutex> lock(mutex_);
    if (claimed_) return false;
    claimed_ = true;
    task_ = task;
    done_ = false;
    error_ = nullptr;
    wake_.notify_one();
    return true;
  }

  /// Waits for the started task; its exception, if any.
  std::exception_ptr wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [this] { return done_; });
    claimed_ = false;
    return error_;
  }

 private:
  SideThread() : pid_(getpid()), thread_([this] { loop(); }) { thread_.detach(); }

  void loop() {
    for (;;) {
      const std::function<void()>* task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return task_ != nullptr; });
        task = task_;
      }
      std::exception_ptr error;
      try {
        (*task)();
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = nullptr;
      error_ = error;
      done_ = true;
      finished_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  const std::function<void()>* task_ = nullptr;
  bool done_ = true;
  bool claimed_ = false;
  std::exception_ptr error_;
  const pid_t pid_;
  std::thread thread_;
};

}  // namespace

void run_alongside(const std::function<void()>& side, const std::function<void()>& here) {
  auto& helper = SideThread::instance();
  if (!helper.try_start(&side)) {
    here();
    side();
    return;
  }
  std::exception_ptr here_error;
  try {
    here();
  } catch (...) {
    here_error = std::current_exception();
  }
  std::exception_ptr side_error = helper.wait();
  if (here_error) std::rethrow_exception(here_error);
  if (side_error) std::rethrow_exception(side_error);
}

SingleThreadedBlas::SingleThreadedBlas() : saved_(get_openblas_threads()) {
  if (saved_ != 1) set_openblas_threads(1);
}
SingleThreadedBlas::~SingleThreadedBlas() {
  if (saved_ != 1) set_openblas_threads(saved_);
}

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

void ensure_quiet_idle_threads(char** argv) {
  bool changed = false;
  for (const auto& [name, value] : {std::pair<const char*, const char*>{"OMP_WAIT_POLICY", "PASSIVE"},
                                    {"OPENBLAS_THREAD_TIMEOUT", "4"}}) {
    if (std::getenv(name) != nullptr) continue;  // the user's choice wins
    if (setenv(name, value, 0) == 0) changed = true;
  }
  if (!changed) return;
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the defaults.
}

int set_num_threads(int n) {
  if (n <= 0) n = std::min(hardware_threads(), kMaxThreads);
  TORCH_CHECK(n <= kMaxThreads, "set_num_threads: at most ", kMaxThreads, " threads, got ", n);
  at::set_num_threads(n);
  set_openblas_threads(n);
  return n;
}

namespace {
std::atomic<bool> explicit_thread_count{false};
}  // namespace

int set_num_threads_explicitly(int n) {
  const int set = set_num_threads(n);
  explicit_thread_count = n > 0;
  return set;
}

void set_num_threads_from_config(int64_t n) {
  if (n > 0 && !explicit_thread_count) set_num_threads(static_cast<int>(n));
}

}  // namespace crnn

#include "crnn/util/threads.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

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

}  // namespace crnn

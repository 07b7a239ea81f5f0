#include "crnn/util/interrupt.h"

#include <signal.h>

namespace crnn {
namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_second_ends{false};

void on_sigint(int) {
  if (g_interrupted.exchange(true) && g_second_ends.load()) {
    // The second Ctrl-C: end now, as SIGINT would have without the scope.
    ::signal(SIGINT, SIG_DFL);
    ::raise(SIGINT);
  }
}

}  // namespace

InterruptScope::InterruptScope(bool second_interrupt_ends) {
  g_interrupted.store(false);
  g_second_ends.store(second_interrupt_ends);
  // A process started with SIGINT ignored (`cmd &` in a script: the shell's
  // Ctrl-C is not for it) keeps ignoring it.
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler == SIG_IGN) return;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;  // a write to a full pipe (stderr | tee) goes on, not a failed stream
  sigemptyset(&sa.sa_mask);
  installed_ = sigaction(SIGINT, &sa, &previous_) == 0;
}

InterruptScope::~InterruptScope() {
  if (installed_) sigaction(SIGINT, &previous_, nullptr);
}

const std::atomic<bool>* InterruptScope::flag() const { return &g_interrupted; }

}  // namespace crnn

#pragma once
/// \file interrupt.h
/// Ctrl-C as a request to stop at the next safe point. While an
/// InterruptScope lives, SIGINT sets a flag instead of ending the process;
/// training reads it after each batch (TrainOptions::stop) and stops with a
/// resumable run directory. The previous SIGINT handling comes back when the
/// scope ends.
///
/// Python's own handler only sets a flag its interpreter reads when an
/// operator returns, i.e. after a whole training run: the crnn operators open
/// a scope while they train. The `crnn` command opens one with
/// `second_interrupt_ends = true`: a second Ctrl-C ends the process at once,
/// for a user who does not want to wait for the batch. A process that was
/// started with SIGINT ignored (a background job of a script) keeps ignoring it.
///
/// \code
///   crnn::InterruptScope interrupt(/*second_interrupt_ends=*/true);
///   crnn::train::TrainOptions o;
///   o.stop = interrupt.flag();
///   crnn::train::train_run(config, "runs/a", o);  // TrainInterrupted after Ctrl-C
/// \endcode

#include <atomic>
#include <csignal>

namespace crnn {

class InterruptScope {
 public:
  explicit InterruptScope(bool second_interrupt_ends = false);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  /// Set once SIGINT arrived while this scope lives (cleared when it opens).
  const std::atomic<bool>* flag() const;

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

}  // namespace crnn

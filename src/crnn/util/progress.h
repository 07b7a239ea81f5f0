#pragma once
/// \file progress.h
/// Progress reporting for long jobs: a redrawn bar with rate and ETA when
/// stderr is a terminal, plain periodic lines (every `interval` seconds)
/// otherwise, so logs stay readable.
///
/// \code
///   crnn::Progress p("features", files.size(), "files");
///   for (...) { ...; p.advance(1, fmt::format("{} failed", failed)); }
///   p.finish();
/// \endcode

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace crnn {

/// "mm:ss", or "h:mm:ss" from an hour on; "--:--" when unknown (negative, NaN, huge).
std::string format_duration(double seconds);

/// Seconds in a duration such as "90m", "2h30m", "1h 5m 30s", "45s", "7.5h" or
/// "3600" (seconds); nullopt for anything else, negative or not finite.
std::optional<double> parse_duration(std::string_view text);

class Progress {
 public:
  /// `total` = 0 when unknown. `unit` names what is counted ("files", "batches").
  /// `visible` = false counts without printing anything (a library caller
  /// that shows progress its own way).
  Progress(std::string label, int64_t total, std::string unit, double interval_seconds = 10.0, bool visible = true);
  ~Progress();
  /// Adds `n` done items; `status` is shown after the counts (e.g. "loss 0.53").
  void advance(int64_t n = 1, const std::string& status = "");
  /// Prints the final line (once).
  void finish(const std::string& status = "");
  double elapsed_seconds() const;
  int64_t done() const { return done_; }

  /// Forces plain-line mode (tests) or terminal mode.
  static void force_terminal(int mode);  // -1 auto, 0 plain, 1 terminal

 private:
  void draw(bool final, const std::string& status);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  double interval_;
  bool terminal_, visible_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mutex_;
};

}  // namespace crnn

#include "crnn/util/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>

namespace crnn {
namespace {
int g_force_terminal = -1;
}  // namespace

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{:02}:{:02}", t / 60, t % 60);
}

std::optional<double> parse_duration(std::string_view text) {
  static const std::regex whole(R"(\s*(\d+(\.\d+)?)\s*)");
  static const std::regex parts(R"(\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*)");
  if (text.size() > 64) return std::nullopt;  // also keeps std::regex's recursion shallow
  const std::string s(text);
  // strtod, not stod: 400 digits give inf (refused below), not an exception.
  auto number = [](const std::ssub_match& x) { return std::strtod(x.str().c_str(), nullptr); };
  std::smatch m;
  double seconds = 0;
  if (std::regex_match(s, m, whole)) {
    seconds = number(m[1]);
  } else if (std::regex_match(s, m, parts) && (m[1].matched || m[2].matched || m[3].matched)) {
    for (int i = 1; i <= 3; ++i)
      if (m[i].matched) seconds += number(m[i]) * (i == 1 ? 3600 : i == 2 ? 60 : 1);
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

void Progress::force_terminal(int mode) { g_force_terminal = mode; }

Progress::Progress(std::string label, int64_t total, std::string unit, double interval_seconds, bool visible)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      interval_(interval_seconds),
      terminal_(g_force_terminal >= 0 ? g_force_terminal == 1 : isatty(fileno(stderr)) == 1),
      visible_(visible),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (terminal_) interval_ = 0.1;
}

Progress::~Progress() {
  if (visible_ && terminal_ && !finished_ && done_ > 0) std::fputs("\n", stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n, const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() >= interval_) {
    last_draw_ = now;
    draw(false, status);
  }
}

void Progress::finish(const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  draw(true, status);
}

void Progress::draw(bool final, const std::string& status) {
  if (!visible_) return;
  const double el = elapsed_seconds();
  const double rate = el > 0 ? done_ / el : 0;
  const double eta = (total_ > 0 && rate > 0) ? (total_ - done_) / rate : -1;
  std::string counts = total_ > 0 ? fmt::format("{}/{} {}", done_, total_, unit_)
                                  : fmt::format("{} {}", done_, unit_);
  std::string tail = fmt::format("{:.1f} {}/s, {} elapsed{}", rate, unit_, format_duration(el),
                                 final ? "" : ", ETA " + format_duration(eta));
  if (!status.empty()) tail += ", " + status;
  if (terminal_) {
    std::string bar;
    if (total_ > 0) {
      const int width = 24;
      const int filled = static_cast<int>(width * std::min<double>(1.0, double(done_) / total_));
      bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    }
    fmt::print(stderr, "\r\033[K{} {}{} ({})", label_, bar, counts, tail);
    if (final) std::fputs("\n", stderr);
  } else {
    fmt::print(stderr, "{}: {} ({})\n", label_, counts, tail);
  }
  std::fflush(stderr);
}

}  // namespace crnn

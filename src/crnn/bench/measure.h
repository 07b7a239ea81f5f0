#pragma once
/// \file measure.h
/// What `crnn bench` measures in one process: the median time of a repeated
/// call, this process's resident memory, and the machine's SGEMM peak (the
/// yardstick for "fraction of peak", docs/performance.md).
///
/// \code
///   double s = crnn::bench::time_median([&] { step(); }, /*min_seconds=*/2.0, /*min_reps=*/3);
///   double peak = crnn::bench::sgemm_peak_gflops();  // with the current thread count
///   fmt::print("{:.0f} steps/s, {:.0f}% of {:.1f} GFLOP/s, {:.0f} MB\n", 1 / s,
///              100 * flops_per_step / s / 1e9 / peak, peak, crnn::bench::peak_rss_mb());
/// \endcode

#include <algorithm>
#include <chrono>
#include <vector>

namespace crnn::bench {

/// The median of `values` (the mean of the two middle ones for an even
/// count). Throws std::invalid_argument when `values` is empty.
double median(std::vector<double> values);

/// Calls timed per measurement at the most: enough for a stable median;
/// min_seconds stops there (min_reps does not).
inline constexpr int kMaxTimedCalls = 50;

/// Times f() repeatedly, after one untimed warm-up call (first-touch
/// allocations, OpenBLAS buffers): at least `min_reps` calls, and more until
/// `min_seconds` have passed or max(min_reps, kMaxTimedCalls) calls were
/// timed. Returns the median seconds per call.
template <typename F>
double time_median(const F& f, double min_seconds, int min_reps) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  f();
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < min_reps || since(start) < min_seconds) {
    const auto t0 = Clock::now();
    f();
    times.push_back(since(t0));
    if (static_cast<int>(times.size()) >= std::max(min_reps, kMaxTimedCalls)) break;
  }
  return median(times);
}

/// This process's resident memory now (/proc/self/statm), in MiB.
double current_rss_mb();

/// This process's peak resident memory so far (getrusage ru_maxrss), in MiB.
double peak_rss_mb();

/// The single-precision GEMM peak as torch::mm sees it, in GFLOP/s: the best
/// of 7 products of 2048 × 2048 matrices (after 2 warm-ups) with the current
/// LibTorch thread count. About a second on one core.
double sgemm_peak_gflops();
/// The same product with bf16 operands (fp32 accumulation, oneDNN): the
/// ceiling of `--precision bf16`. Call only where kernels::bf16_available().
double bf16_peak_gflops();

}  // namespace crnn::bench

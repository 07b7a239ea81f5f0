#include "crnn/bench/measure.h"

#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace crnn::bench {

double median(std::vector<double> values) {
  if (values.empty()) throw std::invalid_argument("median of no values");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

namespace {

double gemm_peak_gflops(torch::ScalarType dtype) {
  using Clock = std::chrono::steady_clock;
  torch::NoGradGuard no_grad;
  const int64_t n = 2048;
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  auto c = torch::empty({n, n}, torch::TensorOptions().dtype(dtype));
  for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);
  double best = 0;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / seconds / 1e9);
  }
  return best;
}

}  // namespace

double sgemm_peak_gflops() { return gemm_peak_gflops(torch::kFloat); }
double bf16_peak_gflops() { return gemm_peak_gflops(torch::kBFloat16); }

}  // namespace crnn::bench

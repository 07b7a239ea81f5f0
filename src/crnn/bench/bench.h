#pragma once
/// \file bench.h
/// `crnn bench`: training and inference throughput of the paper's models on
/// synthetic batches, fused vs composed, as frames/s and as a fraction of the
/// machine's SGEMM peak (SPEC §6, docs/performance.md).
///
/// Every (model, implementation) measurement runs in a fresh worker process
/// (the crnn executable's hidden `bench --worker` mode, model_bench.h), so
/// that its peak resident memory is its own and allocator state never carries
/// over from one model to the next. The SGEMM peak is measured in this
/// process, with its current thread count.
///
/// \code
///   crnn::bench::BenchOptions o;
///   o.models = {"emotion-clstm"};
///   o.threads = crnn::set_num_threads(2);  // workers and the peak alike
///   auto report = crnn::bench::run_benchmark(o);
///   fmt::print("{}", crnn::bench::json_report(report));
/// \endcode

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crnn/bench/model_bench.h"

namespace crnn::bench {

/// A benchmark could not run: unknown model, a worker that failed.
class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BenchOptions {
  std::vector<std::string> models;  ///< preset names; empty: all presets
  int64_t batch = 32;               ///< sequences per batch
  int64_t frames = 300;             ///< frames per sequence
  /// Threads each worker runs with (passed as `--threads`), and the count
  /// the report states; set this process's own count to it too (the SGEMM
  /// peak is measured here).
  int threads = 1;
  double min_seconds = 2.0;    ///< per measurement, see time_median
  int min_reps = 3;            ///< per measurement, see time_median
  bool skip_composed = false;  ///< time the fused path only
  /// Workers per (model, implementation), fused and composed alternating so
  /// that slow drifts of a shared machine hit both; figures are medians.
  int repeats = 1;
  /// Matrix-product precision of the workers, "fp32" or "bf16"
  /// (kernels/precision.h); bf16 where unavailable is a BenchError.
  std::string precision = "fp32";
  /// The crnn executable that runs the workers; empty: this process's own
  /// (/proc/self/exe), which is what `crnn bench` uses.
  std::string executable;
};

/// One model's figures.
struct ModelResult {
  std::string model;
  bool crnn = false;  ///< a CRNN model (CLSTM / CBLSTM preset)
  int64_t batch = 0, frames = 0;
  int threads = 0, repeats = 0;
  double train_flops = 0;    ///< GEMM FLOPs of one training step (nn/flops.h)
  double forward_flops = 0;  ///< GEMM FLOPs of one forward pass
  double sgemm_peak_gflops = 0;
  Figures fused;
  std::optional<Figures> composed;  ///< absent with skip_composed
  std::string precision = "fp32";   ///< of the workers' matrix products
  double bf16_peak_gflops = 0;      ///< 0 where bf16 is unavailable

  double train_gflops() const { return train_flops / fused.train_s / 1e9; }
  double infer_gflops() const { return forward_flops / fused.infer_s / 1e9; }
  /// The peak of the precision the workers ran in (bf16 or SGEMM).
  double matrix_peak_gflops() const { return precision == "bf16" ? bf16_peak_gflops : sgemm_peak_gflops; }
  /// Training GFLOP/s over the matching peak.
  double peak_fraction() const { return train_gflops() / matrix_peak_gflops(); }
  /// The composed path's training GFLOP/s (composed must be set).
  double composed_train_gflops() const { return train_flops / composed->train_s / 1e9; }
  /// Inference GFLOP/s over the matching peak.
  double infer_peak_fraction() const { return infer_gflops() / matrix_peak_gflops(); }
  /// Composed time over fused time (composed must be set); > 1: fused is faster.
  double train_speedup() const { return composed->train_s / fused.train_s; }
  double infer_speedup() const { return composed->infer_s / fused.infer_s; }
};

struct BenchReport {
  double sgemm_peak_gflops = 0;
  double bf16_peak_gflops = 0;  ///< measured where bf16 is available, else 0
  int threads = 0;
  std::vector<ModelResult> models;  ///< in the order of BenchOptions::models
};

/// Throws BenchError "x: unknown model preset (known: ...)" for the first
/// name in `models` that is not a preset.
void check_models(const std::vector<std::string>& models);

/// Times `model` (workers as in BenchOptions) against the given SGEMM peak.
/// Throws BenchError when a worker fails (its exit status; the worker's own
/// error went to this process's stderr).
ModelResult bench_model(const BenchOptions& o, const std::string& model, double sgemm_peak_gflops,
                        double bf16_peak_gflops = 0);

/// Called as the benchmark goes: once the peak is known, and per model.
struct BenchProgress {
  std::function<void(const BenchReport& peaks)> on_peak;
  std::function<void(const ModelResult&)> on_model;
};

/// check_models, the precision (BenchError where bf16 is unavailable), the
/// SGEMM peak and, where available, the bf16 peak, then bench_model for each
/// model in turn.
BenchReport run_benchmark(const BenchOptions& o, const BenchProgress& progress = {});

/// The text table's first lines: the SGEMM peak, the bf16 peak (when not 0),
/// then the column header; peak% is against the peak of `precision`.
std::string text_header(double sgemm_peak_gflops, int threads, double bf16_peak_gflops = 0,
                        const std::string& precision = "fp32");
/// One model's line of the text table.
std::string text_row(const ModelResult& r);
/// One model as a one-line JSON object (the keys of docs/performance.md).
std::string json_object(const ModelResult& r);
/// The JSON array `crnn bench --json` prints: one object per model and line.
std::string json_report(const BenchReport& report);

}  // namespace crnn::bench

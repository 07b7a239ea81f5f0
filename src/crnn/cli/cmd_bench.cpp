// `crnn bench`: the options of the benchmark (src/crnn/bench/bench.h), its
// hidden worker mode, and the printing of its table or JSON.
#include <ATen/Parallel.h>
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "crnn/bench/bench.h"
#include "crnn/cli/command.h"
#include "crnn/train/trainer.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

namespace {

struct BenchCliOptions {
  crnn::bench::BenchOptions bench;
  bool json = false;
  // Worker mode (internal): time one model in this process.
  bool worker = false;
  crnn::bench::WorkerOptions work;
};

int run_bench(BenchCliOptions& o) {
  namespace bench = crnn::bench;
  if (o.worker) {
    o.work.model = o.bench.models.at(0);
    o.work.batch = o.bench.batch;
    o.work.frames = o.bench.frames;
    o.work.min_seconds = o.bench.min_seconds;
    o.work.min_reps = o.bench.min_reps;
    o.work.precision = o.bench.precision;
    fmt::print("{}", bench::format_figures(bench::time_model(o.work)));
    return 0;
  }
  try {
    bench::check_models(o.bench.models);  // a usage error, before any timing
  } catch (const bench::BenchError& e) {
    fmt::print(stderr, "crnn bench: --model {}\n", e.what());
    return crnn::cli::kExitUsage;
  }
  crnn::train::precision_guard(o.bench.precision, "--precision bf16");  // a usage error, before any timing
  bench::BenchProgress progress;
  if (!o.json) {
    progress.on_peak = [&](const bench::BenchReport& peaks) {
      fmt::print("{}", bench::text_header(peaks.sgemm_peak_gflops, o.bench.threads, peaks.bf16_peak_gflops,
                                          o.bench.precision));
    };
    progress.on_model = [](const bench::ModelResult& r) {
      fmt::print("{}", bench::text_row(r));
      std::fflush(stdout);
    };
  }
  const auto report = bench::run_benchmark(o.bench, progress);
  if (o.json) fmt::print("{}", bench::json_report(report));
  return 0;
}

crnn::cli::Registrar reg{
    "bench",
    "Time training steps and inference of the paper's models (fused vs composed), as frames/s "
    "and as a fraction of the measured SGEMM peak",
    [](CLI::App& app) {
      auto o = std::make_shared<BenchCliOptions>();
      auto& b = o->bench;
      b.threads = 0;
      app.add_option("--model", b.models,
                     "Model preset(s) (default: all): emotion-{baseline,conv,clstm,eclstm}, "
                     "agender-{baseline,conv,clstm,cblstm}");
      app.add_option("--batch", b.batch, "Sequences per batch")->check(crnn::cli::IntRange(1, 4096));
      app.add_option("--frames", b.frames, "Frames per sequence")->check(crnn::cli::IntRange(1, 1000000));
      app.add_option("--threads", b.threads, "CPU threads (0: crnn --threads, else all cores)")
          ->check(crnn::cli::IntRange(0, crnn::kMaxThreads));
      app.add_flag("--json", o->json, "Print a JSON array, one object per model");
      app.add_option("--min-seconds", b.min_seconds,
                     "Repeat each measurement for at least this long, up to 50 calls (median reported)")
          ->check(CLI::Validator(
              [](std::string& text) -> std::string {
                const double v = crnn::parse_number(text).value_or(std::nan(""));
                // NaN fails both comparisons, so it is refused too.
                return v >= 0.0 && v <= 3600.0 ? "" : "must be a number of seconds in 0..3600, got " + text;
              },
              "SECONDS in 0..3600"));
      app.add_option("--min-reps", b.min_reps, "Repeat each measurement at least this often")
          ->check(crnn::cli::IntRange(1, 1000000));
      crnn::cli::add_precision_option(app, b.precision);
      app.add_flag("--skip-composed", b.skip_composed, "Do not time the composed path");
      app.add_option("--repeats", b.repeats,
                     "Workers per model and path, fused and composed alternating; medians reported")
          ->check(crnn::cli::IntRange(1, 1000));
      app.add_flag("--worker", o->worker, "(internal) time one model in this process")->group("");
      app.add_option("--impl", o->work.impl, "(internal) implementation for --worker")->group("");
      app.add_option("--phase", o->work.phase, "(internal) train, infer or both, for --worker")->group("");
      return [o] {
        // `crnn --threads N bench` has already set the count; `bench --threads N` wins.
        o->bench.threads = crnn::set_num_threads(o->bench.threads > 0 ? o->bench.threads : at::get_num_threads());
        return run_bench(*o);
      };
    },
    70};

}  // namespace

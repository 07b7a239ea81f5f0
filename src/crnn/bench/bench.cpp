#include "crnn/bench/bench.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>

#include "crnn/bench/measure.h"
#include "crnn/kernels/precision.h"
#include "crnn/nn/flops.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/util/subprocess.h"

namespace crnn::bench {
namespace {

Figures run_worker(const BenchOptions& o, const std::string& model, const std::string& impl) {
  WorkerOptions w;
  w.model = model;
  w.impl = impl;
  w.batch = o.batch;
  w.frames = o.frames;
  w.min_seconds = o.min_seconds;
  w.min_reps = o.min_reps;
  w.precision = o.precision;
  const auto args = worker_args(w, o.threads);
  // The worker's stdout carries its figures; its stderr (warnings, its error)
  // goes straight to ours.
  const std::string what =
      fmt::format("bench: the worker for {} ({}, batch {} x {} frames)", model, impl, o.batch, o.frames);
  ProcessResult r;
  try {
    if (o.executable.empty()) {
      r = run_self(args, Stderr::Inherit);
    } else {
      std::vector<std::string> argv{o.executable};
      argv.insert(argv.end(), args.begin(), args.end());
      r = run_process(argv, Stderr::Inherit);
    }
  } catch (const SubprocessError& e) {
    throw BenchError(fmt::format("{} could not start: {}", what, e.what()));
  }
  if (!r.ok()) throw BenchError(fmt::format("{} failed: {} (its error, if any, is above)", what, r.describe()));
  try {
    return parse_figures(r.output);
  } catch (const std::exception& e) {
    throw BenchError(fmt::format("{} printed {}; its output:\n{}", what, e.what(), r.output));
  }
}

}  // namespace

void check_models(const std::vector<std::string>& models) {
  const auto names = nn::SequenceClassifierOptions::preset_names();
  for (const auto& m : models)
    if (std::find(names.begin(), names.end(), m) == names.end())
      throw BenchError(fmt::format("{}: unknown model preset (known: {})", m, fmt::join(names, ", ")));
}

ModelResult bench_model(const BenchOptions& o, const std::string& model, double sgemm_peak_gflops,
                        double bf16_peak_gflops) {
  const auto options = nn::SequenceClassifierOptions::preset(model, classes_for(model));
  ModelResult r;
  r.model = model;
  r.crnn = is_crnn(model);
  r.batch = o.batch;
  r.frames = o.frames;
  r.threads = o.threads;
  r.repeats = o.repeats;
  r.train_flops = nn::training_flops(options, o.batch, o.frames);
  r.forward_flops = nn::forward_flops(options, o.batch, o.frames);
  r.sgemm_peak_gflops = sgemm_peak_gflops;
  r.bf16_peak_gflops = bf16_peak_gflops;
  r.precision = o.precision;
  std::vector<Figures> fused, composed;
  for (int i = 0; i < o.repeats; ++i) {
    fused.push_back(run_worker(o, model, "fused"));
    if (!o.skip_composed) composed.push_back(run_worker(o, model, "composed"));
  }
  r.fused = median_figures(fused, o.batch * o.frames);
  if (!composed.empty()) r.composed = median_figures(composed, o.batch * o.frames);
  return r;
}

BenchReport run_benchmark(const BenchOptions& o, const BenchProgress& progress) {
  BenchReport report;
  const auto models = o.models.empty() ? nn::SequenceClassifierOptions::preset_names() : o.models;
  check_models(models);  // early, not in a worker
  report.threads = o.threads;
  try {
    if (kernels::parse_precision(o.precision) == kernels::Precision::bf16) kernels::require_bf16();
  } catch (const std::exception& e) {
    throw BenchError(fmt::format("--precision {}: {}", o.precision, e.what()));
  }
  report.sgemm_peak_gflops = sgemm_peak_gflops();
  if (kernels::bf16_available()) report.bf16_peak_gflops = bf16_peak_gflops();
  if (progress.on_peak) progress.on_peak(report);
  for (const auto& model : models) {
    report.models.push_back(bench_model(o, model, report.sgemm_peak_gflops, report.bf16_peak_gflops));
    if (progress.on_model) progress.on_model(report.models.back());
  }
  return report;
}

std::string text_header(double sgemm_peak_gflops, int threads, double bf16_peak_gflops,
                        const std::string& precision) {
  std::string bf16 =
      bf16_peak_gflops > 0
          ? fmt::format("bf16 peak (torch::mm 2048² bf16, best of 7, {} threads): {:.1f} GFLOP/s\n", threads,
                        bf16_peak_gflops)
          : std::string();
  if (precision != "fp32") bf16 += fmt::format("precision {}: peak% is against the {} peak\n", precision, precision);
  return fmt::format("SGEMM peak (torch::mm 2048², best of 7, {} threads): {:.1f} GFLOP/s\n", threads,
                     sgemm_peak_gflops) +
         bf16 +
         fmt::format("{:<17} {:>9} {:>12} {:>12} {:>9} {:>7} {:>9} | {:>12} {:>12} {:>9} {:>7} {:>8}\n", "model",
                     "GFLOP/st", "train fr/s", "infer fr/s", "GFLOP/s", "peak%", "RSS MB", "comp train",
                     "comp infer", "comp RSS", "x train", "x infer");
}

std::string text_row(const ModelResult& r) {
  std::string line = fmt::format("{:<17} {:>9.2f} {:>12.0f} {:>12.0f} {:>9.1f} {:>6.1f}% {:>9.0f}", r.model,
                                 r.train_flops / 1e9, r.fused.train_frames_per_s, r.fused.infer_frames_per_s,
                                 r.train_gflops(), 100 * r.peak_fraction(), r.fused.peak_rss_mb);
  if (r.composed)
    line += fmt::format(" | {:>12.0f} {:>12.0f} {:>9.0f} {:>6.2f}x {:>7.2f}x", r.composed->train_frames_per_s,
                        r.composed->infer_frames_per_s, r.composed->peak_rss_mb, r.train_speedup(),
                        r.infer_speedup());
  return line + "\n";
}

std::string json_object(const ModelResult& r) {
  std::string js = fmt::format(
      "{{\"model\": \"{}\", \"crnn\": {}, \"batch\": {}, \"frames\": {}, \"threads\": {}, "
      "\"train_gflop_per_step\": {:.6g}, \"train_frames_per_s\": {:.1f}, "
      "\"infer_frames_per_s\": {:.1f}, \"train_gflops\": {:.2f}, \"infer_gflops\": {:.2f}, "
      "\"sgemm_peak_gflops\": {:.2f}, \"peak_fraction\": {:.4f}, \"peak_rss_mb\": {:.1f}, "
      "\"baseline_rss_mb\": {:.1f}, \"repeats\": {}, \"precision\": \"{}\", "
      "\"bf16_peak_gflops\": {:.2f}, \"infer_peak_fraction\": {:.4f}",
      r.model, r.crnn ? "true" : "false", r.batch, r.frames, r.threads, r.train_flops / 1e9,
      r.fused.train_frames_per_s, r.fused.infer_frames_per_s, r.train_gflops(), r.infer_gflops(),
      r.sgemm_peak_gflops, r.peak_fraction(), r.fused.peak_rss_mb, r.fused.baseline_rss_mb, r.repeats,
      r.precision, r.bf16_peak_gflops, r.infer_peak_fraction());
  if (r.composed) {
    js += fmt::format(
        ", \"composed_train_frames_per_s\": {:.1f}, \"composed_infer_frames_per_s\": {:.1f}, "
        "\"composed_train_gflops\": {:.2f}, \"composed_peak_fraction\": {:.4f}, "
        "\"composed_peak_rss_mb\": {:.1f}, \"composed_baseline_rss_mb\": {:.1f}, "
        "\"train_speedup\": {:.2f}, \"infer_speedup\": {:.2f}",
        r.composed->train_frames_per_s, r.composed->infer_frames_per_s, r.composed_train_gflops(),
        r.composed_train_gflops() / r.matrix_peak_gflops(), r.composed->peak_rss_mb, r.composed->baseline_rss_mb,
        r.train_speedup(), r.infer_speedup());
  }
  return js + "}";
}

std::string json_report(const BenchReport& report) {
  std::string out = "[\n";
  for (size_t i = 0; i < report.models.size(); ++i)
    out += fmt::format("  {}{}\n", json_object(report.models[i]), i + 1 < report.models.size() ? "," : "");
  return out + "]\n";
}

}  // namespace crnn::bench

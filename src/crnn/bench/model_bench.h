#pragma once
/// \file model_bench.h
/// One benchmark measurement: a paper model preset built with one
/// implementation (fused or composed), its training step and its inference
/// timed in this process on a synthetic batch of full-length sequences.
///
/// `crnn bench` runs each measurement in a fresh worker process (`crnn bench
/// --worker ...`, see bench.h), so that the peak resident memory is the
/// model's own; the worker prints its figures with format_figures and the
/// parent reads them back with parse_figures.
///
/// \code
///   crnn::bench::WorkerOptions w;
///   w.model = "emotion-clstm";
///   w.impl = "composed";
///   auto f = crnn::bench::time_model(w);      // in this process
///   fmt::print("{}", crnn::bench::format_figures(f));  // "train_s 0.123456\n..."
/// \endcode

#include <cstdint>
#include <string>
#include <vector>

namespace crnn::bench {

/// What a worker times.
struct WorkerOptions {
  std::string model = "emotion-clstm";  ///< a SequenceClassifierOptions preset name
  std::string impl = "fused";           ///< "fused" or "composed"
  int64_t batch = 32;                   ///< sequences per batch
  int64_t frames = 300;                 ///< frames per sequence (all full length)
  double min_seconds = 2.0;             ///< per measurement, see time_median
  int min_reps = 3;                     ///< per measurement, see time_median
  /// "both", or only "train" / "infer" (for profiling one); the other one's
  /// time is then reported as 1 s.
  std::string phase = "both";
  /// Matrix-product precision, "fp32" or "bf16" (kernels/precision.h).
  std::string precision = "fp32";
};

/// A worker's figures (or the medians over several workers').
struct Figures {
  double train_s = 0;             ///< seconds per training step (forward, backward, Adam)
  double infer_s = 0;             ///< seconds per forward pass without gradients
  double train_frames_per_s = 0;  ///< batch · frames / train_s
  double infer_frames_per_s = 0;  ///< batch · frames / infer_s
  double peak_rss_mb = 0;         ///< peak resident memory after the training steps
  double baseline_rss_mb = 0;     ///< resident memory once model, batch and optimizer exist
};

/// Classes of the benchmark's synthetic labels: RAVDESS emotion8 (8) for the
/// emotion presets, 3 for the age / gender ones.
int64_t classes_for(const std::string& model);

/// True for the CRNN models (the CLSTM / CBLSTM presets).
bool is_crnn(const std::string& model);

/// Builds `o.model` with `o.impl` (seed 0) and times its training step and
/// inference in this process. Sets the default implementation of newly built
/// layers only for the duration of the call. Throws std::invalid_argument for
/// an unknown preset, implementation or phase.
Figures time_model(const WorkerOptions& o);

/// The worker's output: one `key value` line per figure, keys as the field
/// names (train_s, infer_s, train_frames_per_s, ...).
std::string format_figures(const Figures& f);

/// Reads format_figures' lines back; other lines (warnings a worker may
/// print) are ignored. Throws std::runtime_error naming the first missing key.
Figures parse_figures(const std::string& text);

/// The median of each figure over several workers' (rates from the median
/// times, so that they agree with them), for `frames_per_step` = batch · frames.
/// Throws std::invalid_argument for an empty list.
Figures median_figures(const std::vector<Figures>& runs, int64_t frames_per_step);

/// The arguments of this executable that run `o` as a worker with `threads`
/// threads: {"bench", "--threads", "2", "--worker", "--model", ...}.
std::vector<std::string> worker_args(const WorkerOptions& o, int threads);

}  // namespace crnn::bench

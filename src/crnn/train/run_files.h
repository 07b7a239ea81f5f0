#pragma once
/// \file run_files.h
/// The files of a run directory, each with its one type, one reader and one
/// writer (docs/training.md, "Run directory"):
///
///   RUNDIR/metrics.csv        EpochMetrics per epoch: epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s
///   RUNDIR/summary.json       RunSummary: best epoch, figures of the best model, split sizes, wall time
///   RUNDIR/eval_<split>.json  EvalResult: one evaluation of a model on a split
///   DIR/repeat.json, repeat.md RepeatSummary: several seeds of one config and their mean ± std
///
/// Every writer writes atomically (util/file_io.h); every reader checks what it
/// reads and throws RunFileError naming the file (and line or key). The mean ±
/// std of every table crnn writes is `mean_std` below, with one rule.
///
/// \code
///   auto s = crnn::train::read_run_summary("runs/clstm/summary.json");
///   auto rows = crnn::train::read_metrics_csv("runs/clstm/metrics.csv");
///   auto [mean, sd, n] = crnn::train::mean_std({0.41, 0.38, 0.44});
/// \endcode

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "crnn/util/file_io.h"

namespace crnn::train {

/// A run file that is missing, malformed or holds values `crnn train` cannot
/// write. A kind of DataError (bad input the user can fix or remove).
class RunFileError : public crnn::DataError {
 public:
  using crnn::DataError::DataError;
};

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------
// mean ± std

/// Mean and sample standard deviation (n − 1) of the finite values of `v`.
/// The one rule for every table: a NaN is a missing value (a run without a
/// test split) and is left out; `n` counts the values used; the mean is NaN
/// when n = 0 and the std is NaN when n < 2 (one run has no spread, and
/// tables print its value alone, not "± 0").
struct MeanStd {
  double mean = kMissing, std = kMissing;
  size_t n = 0;
};
MeanStd mean_std(const std::vector<double>& v);

// ---------------------------------------------------------------------------
// metrics.csv

/// One row of metrics.csv; an empty cell reads as NaN.
struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = kMissing, val_loss = kMissing, val_ua_recall = kMissing, val_wa = kMissing;
  double epoch_seconds = kMissing, frames_per_s = kMissing;
};

/// The header line of metrics.csv (with its newline).
const std::string& metrics_csv_header();

/// Reads metrics.csv. The header must name the columns (in any order; extra
/// columns are ignored). A last line without a newline that does not parse is
/// taken to be mid-write and skipped.
std::vector<EpochMetrics> read_metrics_csv(const std::string& path);

/// Writes the header and `rows` (epochs increasing).
void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& rows);

// ---------------------------------------------------------------------------
// summary.json

/// What a finished run reports: written once, after the best model's final
/// evaluation; its presence marks the run as finished.
struct RunSummary {
  int64_t best_epoch = 0, epochs_run = 0;
  double val_ua_recall = kMissing, val_wa = kMissing;
  double test_ua_recall = kMissing, test_wa = kMissing;  ///< NaN: no test split
  double wall_seconds = kMissing;
  std::string task;
  std::vector<std::string> labels;
  int64_t train_utterances = 0, valid_utterances = 0, test_utterances = 0;
  int64_t train_speakers = 0, valid_speakers = 0, test_speakers = 0;
  uint64_t seed = 0;
  std::string split;  ///< where the split came from, in words ("" in runs before it was recorded)
  /// The features' extractor line ("egemaps-v02 …", "kaldi-fbank …"; "" in runs before it was recorded).
  std::string feature_extractor;
  /// manifest_checksum of the manifest the run was trained on ("" in runs before it was recorded).
  std::string manifest_crc32;
};

/// Throws RunFileError unless the file is a JSON object with epochs_run.
RunSummary read_run_summary(const std::string& path);
void write_run_summary(const std::string& path, const RunSummary& s);
/// The JSON text `write_run_summary` writes (what Python's crnn.train returns).
std::string run_summary_json_text(const RunSummary& s);

/// Whether the run in `run_dir` finished: its summary.json reads (a damaged
/// one counts as unfinished, so the run is resumed and writes it again).
bool run_finished(const std::string& run_dir);

// ---------------------------------------------------------------------------
// eval_<split>.json

struct EvalResult {
  std::string split, task;
  std::vector<std::string> labels;
  int64_t count = 0;
  double loss = kMissing;  ///< mean cross-entropy of the averaged prediction
  double ua_recall = kMissing, wa = kMissing;
  std::vector<double> per_class_recall;         ///< NaN: class absent from the split
  std::vector<std::vector<int64_t>> confusion;  ///< [true][predicted]
};

EvalResult read_eval_json(const std::string& path);
/// The JSON text `write_eval_json` writes (for `crnn eval --json -`).
std::string eval_json_text(const EvalResult& e);
void write_eval_json(const std::string& path, const EvalResult& e);

// ---------------------------------------------------------------------------
// repeat.json and repeat.md

/// One seed of a repeat directory (its entry in repeat.json).
struct RepeatRun {
  uint64_t seed = 0;
  std::string dir;  ///< relative to the repeat directory
  double test_ua_recall = kMissing, test_wa = kMissing, val_ua_recall = kMissing;
  int64_t best_epoch = 0, epochs_run = 0;
  double wall_seconds = kMissing;
};

/// `seed`'s entry for the run whose summary is `s`, in subdirectory `dir`.
RepeatRun repeat_run(const RunSummary& s, uint64_t seed, const std::string& dir);

struct RepeatSummary {
  std::string task, preset;  ///< what the runs trained (for the headings)
  std::vector<RepeatRun> runs;
  MeanStd test_ua_recall, test_wa, val_ua_recall;  ///< over the runs (mean_std)
};

/// Fills the means and standard deviations of `s` from its runs.
void summarize(RepeatSummary& s);

RepeatSummary read_repeat_json(const std::string& path);
/// Writes dir/repeat.json and dir/repeat.md (a markdown table) for `s`.
void write_repeat_files(const std::string& dir, const RepeatSummary& s);

}  // namespace crnn::train

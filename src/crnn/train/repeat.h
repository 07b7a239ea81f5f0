#pragma once
/// \file repeat.h
/// Several seeded runs of one config and their mean ± std — the form in which
/// the paper reports results. Finished runs (summary.json present) are
/// skipped, interrupted ones resumed, so the whole set is resumable.
///
/// \code
///   auto r = crnn::train::repeat_runs(cfg, "runs/clstm-x5", /*seeds=*/5);
///   std::cout << r.test_ua_recall_mean << " ± " << r.test_ua_recall_std << "\n";
/// \endcode

#include <ostream>
#include <string>
#include <vector>

#include "crnn/train/config.h"

namespace crnn::train {

struct RepeatRun {
  uint64_t seed = 0;
  std::string dir;  ///< relative to the repeat directory
  double test_ua_recall = 0, test_wa = 0, val_ua_recall = 0;
  int64_t best_epoch = 0, epochs_run = 0;
  double wall_seconds = 0;
};

struct RepeatSummary {
  std::vector<RepeatRun> runs;
  double test_ua_recall_mean = 0, test_ua_recall_std = 0;
  double test_wa_mean = 0, test_wa_std = 0;
  double val_ua_recall_mean = 0, val_ua_recall_std = 0;
};

/// Mean and sample standard deviation (n − 1; 0 for one value).
std::pair<double, double> mean_std(const std::vector<double>& v);

/// Runs seeds first_seed .. first_seed + seeds − 1 into dir/seed_<s>/, then
/// writes dir/repeat.json and dir/repeat.md.
RepeatSummary repeat_runs(const RunConfig& config, const std::string& dir, int64_t seeds,
                          uint64_t first_seed = 1, std::ostream& log = std::cerr);

/// Whether the run in `run_dir` finished: its summary.json exists and is a
/// summary (a damaged one counts as unfinished, so the run is resumed and
/// writes it again).
bool run_finished(const std::string& run_dir);

/// One seeded run into dir/seed_<seed>/: skipped when it already finished
/// (run_finished), resumed when interrupted (last.pt), trained otherwise.
/// `label` prefixes the log line.
RepeatRun run_seed(const RunConfig& config, const std::string& dir, uint64_t seed,
                   std::ostream& log = std::cerr, const std::string& label = "repeat");

/// Fills the means and standard deviations of `s` from its runs.
void summarize(RepeatSummary& s);

/// Writes dir/repeat.json and dir/repeat.md for the runs in `s`.
void write_repeat_files(const RepeatSummary& s, const std::string& dir, const RunConfig& config);

/// Reads the finished runs' dir/seed_*/summary.json into a summary (no training).
RepeatSummary read_repeat(const std::string& dir);

}  // namespace crnn::train

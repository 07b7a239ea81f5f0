#pragma once
/// \file repeat.h
/// Several seeded runs of one config and their mean ± std (run_files.h:
/// RepeatSummary, repeat.json) — the form in which
/// the paper reports results. Finished runs (summary.json present) are
/// skipped, interrupted ones resumed, so the whole set is resumable.
///
/// \code
///   auto r = crnn::train::repeat_runs(cfg, "runs/clstm-x5", /*seeds=*/5);
///   std::cout << r.test_ua_recall.mean << " ± " << r.test_ua_recall.std << "\n";
/// \endcode

#include <ostream>
#include <string>
#include <vector>

#include "crnn/train/config.h"
#include "crnn/train/run_files.h"
#include "crnn/train/trainer.h"

namespace crnn::train {

/// Runs seeds first_seed .. first_seed + seeds − 1 into dir/seed_<s>/, then
/// writes dir/repeat.json and dir/repeat.md. `train` is passed to every
/// seed's train_run (its progress and stop flag; `resume` is set per seed).
RepeatSummary repeat_runs(const RunConfig& config, const std::string& dir, int64_t seeds,
                          uint64_t first_seed = 1, std::ostream& log = std::cerr, const TrainOptions& train = {});

/// One seeded run into dir/seed_<seed>/: skipped when it already finished
/// (run_finished), resumed when interrupted (last.pt), trained otherwise.
/// `label` prefixes the log line.
RepeatRun run_seed(const RunConfig& config, const std::string& dir, uint64_t seed,
                   std::ostream& log = std::cerr, const std::string& label = "repeat", const TrainOptions& train = {});

/// Reads the finished runs' dir/seed_*/summary.json into a summary (no training).
RepeatSummary read_repeat(const std::string& dir);

}  // namespace crnn::train

#pragma once
/// \file cross_validation.h
/// One speaker-group cross-validation of an experiment (a row or column with
/// `folds = K`: its K cells, one per test fold) summarized as papers in the
/// field report it. Every utterance is tested in exactly one fold, so the K
/// folds' test predictions of one seed together classify the whole corpus:
///   - pooled: per seed, the UA recall (and WA) of the K test confusions
///     summed; mean ± std over the seeds whose K folds all finished;
///   - over folds: mean ± std over the folds of each fold's mean over seeds
///     (how much the result depends on which speakers are tested).
///
/// \code
///   std::vector<crnn::train::CrossValidationFold> folds;  // K × {cell directory, collect_cell(...)}
///   auto cv = crnn::train::summarize_cross_validation(folds);
///   fmt::print("{:.1f} ± {:.1f}\n", 100 * cv.pooled_ua_recall.mean, 100 * cv.pooled_ua_recall.std);
/// \endcode

#include <cstdint>
#include <string>
#include <vector>

#include "crnn/train/run_files.h"

namespace crnn::train {

/// One fold: its cell directory (holding seed_<s>/) and its finished runs.
struct CrossValidationFold {
  std::string dir;
  RepeatSummary runs;
};

struct CrossValidationSummary {
  int64_t folds = 0;
  std::vector<std::string> labels;  ///< the classes of the pooled confusion
  /// Of the folds' mean test UA recall (each over its seeds); n = folds with a test score.
  MeanStd over_folds;
  /// Over the seeds whose K folds all have a test confusion: UA recall and WA
  /// of the K confusions summed; n = those seeds.
  MeanStd pooled_ua_recall, pooled_wa;
  /// Summed over those seeds' K folds, [true][predicted] (empty without one).
  std::vector<std::vector<int64_t>> pooled_confusion;
};

/// Reads each fold's seed_<s>/eval_test.json for the pooled figures. A seed
/// whose folds disagree on the classes (or with the first pooled seed's) is
/// left out of the pooled figures.
CrossValidationSummary summarize_cross_validation(const std::vector<CrossValidationFold>& folds);

}  // namespace crnn::train

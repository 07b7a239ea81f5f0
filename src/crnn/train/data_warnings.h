#pragma once
/// \file data_warnings.h
/// Warnings about a run's data that train anyway but are most often mistakes
/// in the manifest: labels or speakers typed two ways, a class of one or two
/// utterances, a validation or test split without some class, one audio file
/// behind several rows, numbers as labels, an utterance far longer than the
/// rest. Each names the rows (file:line) where it can. load_run_data prints
/// them after the split summary.
///
/// \code
///   warn_about_data(splits, run_data, config.data, per_class, std::cerr);
/// \endcode

#include <cstdint>
#include <iosfwd>
#include <vector>

#include "crnn/data/splits.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"

namespace crnn::train {

/// Fewer training utterances than this in a class: a warning (a typo of
/// another label, most often).
inline constexpr int64_t kFewestTrainingUtterances = 3;

/// A training utterance longer than this many times the median: a warning
/// (its batch pads every other utterance to its length: memory and time).
inline constexpr double kLongUtteranceFactor = 10.0;

/// Writes "data: warning: ..." lines to `log`. `per_class`: training
/// utterances per class of `d.labels`.
void warn_about_data(const data::Splits& split, const RunData& d, const DataConfig& config,
                     const std::vector<int64_t>& per_class, std::ostream& log);

}  // namespace crnn::train

#pragma once
/// \file run_data.h
/// From a run's [data] config to normalized examples per split: reads the
/// manifest and the feature file, makes the speaker-independent split
/// (split column, or speaker-group k-fold), carves validation speakers when
/// needed, maps labels to classes and standardizes every utterance with its
/// speaker's statistics (SPEC §3).
///
/// \code
///   auto d = crnn::train::load_run_data(cfg.data, std::cerr);
///   d.train.size(); d.labels.names(); d.input_size;
/// \endcode

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "crnn/data/batcher.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "crnn/data/normalization.h"
#include "crnn/data/splits.h"
#include "crnn/train/config.h"

namespace crnn::train {

struct RunData {
  data::LabelSet labels;
  std::vector<data::Example> train, valid, test;  ///< normalized, labels as class indices
  int64_t input_size = 0;
  int64_t train_speakers = 0, valid_speakers = 0, test_speakers = 0;
  /// Statistics over all training frames: the documented fallback for audio
  /// of an unseen speaker at prediction time (see docs/training.md).
  data::FeatureStats global_stats;
  data::FeatureAttributes features;
  std::vector<std::string> skipped;  ///< "id: reason" for rows left out
  std::string split_source;          ///< where the split came from, in words (assign_splits)
  data::SplitMembers members;        ///< who is in which split (recorded in the model file)
  std::string manifest_crc32;        ///< manifest_checksum(data.manifest) when it was read (in summary.json)
};

/// k of the speaker-group cross-validation used when the manifest has no
/// split column and the config sets no data.folds.
inline constexpr int64_t kDefaultFolds = 6;

/// Throws ConfigError / data::DataError / data::FeatureStoreError with a
/// message naming the file and the problem: missing label column, empty split,
/// features file that does not cover the manifest, …  With `new_run` (a run
/// that has not trained yet, or `crnn train --check`), a manifest whose split
/// would be taken for a label column is refused too
/// (refuse_split_under_another_name); a resumed run keeps the split it has.
RunData load_run_data(const DataConfig& config, std::ostream& log, bool new_run = true);

/// Refuses a manifest without a `split` column (data.folds = 0, no
/// data.split_column) that has a label column holding only train / valid /
/// test ('Split', 'set'): it would be cross-validated instead, training on the
/// speakers set apart for testing. A ConfigError naming the column and the fixes.
void refuse_split_under_another_name(const data::Manifest& manifest, const DataConfig& config);

/// CRC-32 (8 hex digits) of what a run takes from its manifest: per row, in id
/// order, the id, the speaker, the label of data.task, the split (column
/// data.split_column) and the label of data.stratify_by. Not the audio paths
/// (a corpus moved, or prepared on another machine, is the same data), the row
/// order or other label columns. A finished run records it (summary.json
/// manifest_crc32).
std::string manifest_checksum(const data::Manifest& manifest, const DataConfig& config);

/// Why the finished run in `run_dir` is not a result of `config`'s manifest as
/// it is now: its summary.json records another manifest_checksum (labels,
/// speakers or splits changed since, so its numbers are of other rows). ""
/// when they agree, or when it cannot be told: a run from before the checksum
/// was recorded, or a manifest that is not there or does not read (e.g. a
/// clone with the committed runs but not the data). `current` (if given)
/// keeps the manifests' present checksums between calls: checking many runs of
/// one manifest reads it once.
std::string manifest_changed_since(const std::string& run_dir, const DataConfig& config,
                                   std::map<std::string, std::string>* current = nullptr);

/// Throws data::DataError naming both files if any row of `manifest` has no
/// features in `store` (how many, the first few ids, and how to fix it), or if
/// the store's rows were computed from other audio files than the manifest
/// names (data::moved_sources) or from an earlier version of them
/// (data::changed_sources).
void check_features_cover(const data::FeatureStore& store, const data::Manifest& manifest,
                          const std::string& features_path, const std::string& manifest_path);

/// Throws data::DataError naming both files when features made by one
/// extractor (`features_extractor`, the store's describe() line) would be fed
/// to a model made for another (`model_extractor`): scored or trained on
/// without complaint, they would give meaningless numbers.
void check_features_match(const std::string& features_extractor, const std::string& model_extractor,
                          const std::string& features_path, const std::string& model_path);

/// The manifest with its split assigned as `config` says — the data protocol
/// follows the data: the manifest's split column as it is (plus carved
/// validation speakers when it has no valid rows), unless the config asks for
/// k-fold cross-validation (data.folds ≥ 3); a manifest without a split column
/// gets kDefaultFolds-fold speaker-group cross-validation. `source`, when
/// given, receives where the split came from, in words.
data::Manifest assign_splits(const data::Manifest& manifest, const DataConfig& config,
                             std::string* source = nullptr);

/// The rows of `manifest` in split `split` ("train", "valid", "test", or
/// "all" for every row) as `config` assigns them: what `crnn eval --split`
/// scores. One special case: "test" of a manifest with a `split` column (the
/// default data.split_column, no data.folds) is its test rows as they are,
/// without assign_splits, since carving validation speakers only ever moves
/// training speakers; so a manifest of test rows only evaluates too.
/// Throws data::DataError naming config.manifest when the split has no rows,
/// ConfigError for an unknown split name or when assign_splits does (no
/// split column and no data.folds, say).
/// \code
///   auto test = crnn::train::select_split(data::Manifest::read(cfg.data.manifest), cfg.data, "test");
/// \endcode
/// `source` (if given) gets where the split came from, in words.
data::Manifest select_split(const data::Manifest& manifest, const DataConfig& config, const std::string& split,
                            std::string* source = nullptr);

/// A warning when rows of `part` (the evaluated `split`: "valid" or "test")
/// are utterances that `trained` (a model file's record) has in its training
/// split, same id and speaker: "" when there are none, when `split` is "train" or "all",
/// or when the model file records no splits. The score of such rows is not
/// speaker-independent; most likely the manifest's split changed since
/// training.
std::string training_speakers_warning(const data::SplitMembers& trained, const data::Manifest& part,
                                      const std::string& split, const std::string& model_path);

/// Normalized examples for the rows of `manifest` (each speaker with its own
/// statistics, or all with `fixed_stats` when given), labels from `labels`
/// for `task`. Rows without a label are skipped and reported in `skipped`.
/// With `raw`, the unnormalized frames of the loaded rows are appended to it
/// in the order of the returned examples (so callers need not read them again).
std::vector<data::Example> load_examples(const data::Manifest& manifest, const data::FeatureStore& store,
                                         const std::string& task, const data::LabelSet& labels,
                                         std::vector<std::string>* skipped,
                                         std::vector<torch::Tensor>* raw = nullptr,
                                         const data::FeatureStats* fixed_stats = nullptr);

}  // namespace crnn::train

#pragma once
/// \file splits.h
/// Speaker-independent train / valid / test splits (SPEC §3): no speaker is
/// ever in two of them. Three ways, all documented in docs/splits.md:
///
/// 1. the corpus's own `split` column (`split_by_column`), checked;
/// 2. a validation set carved out of the training speakers
///    (`carve_validation`), class-balanced by speakers, seeded;
/// 3. k-fold speaker-group cross-validation (`kfold`), seeded.
///
/// \code
///   auto m = Manifest::read("speechocean762.csv");            // train / test
///   ValidationOptions vo;
///   vo.task = "age3"; vo.speakers_per_class = 2; vo.seed = 1;
///   Manifest with_valid = carve_validation(m, vo);           // 6 speakers → valid
///   Splits s = split_by_column(with_valid);                   // s.train, s.valid, s.test
///
///   KFoldOptions ko; ko.k = 5; ko.seed = 1;
///   Splits fold0 = split_by_column(kfold(m, 0, ko));          // fold 0 test, fold 1 valid
/// \endcode

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "crnn/data/manifest.h"

namespace crnn::data {

/// The three parts of a split manifest.
struct Splits {
  Manifest train, valid, test;
};

/// Throws DataError naming the speaker and both splits if any speaker's
/// utterances are in more than one split; in a manifest with a split, a row
/// without one is that error's cause and is named as such (an empty split cell).
void check_speaker_independent(const Manifest& manifest);

/// Separates a manifest by its `split` column after check_speaker_independent.
/// Rows without a split are an error (assign them first: carve_validation or kfold).
Splits split_by_column(const Manifest& manifest);

/// Who is in which split: split name ("train", "valid", "test") → speaker →
/// utterance ids (sorted). What a model file records of the data it was
/// trained with, so that a resume with another split is refused and an
/// evaluation on training speakers is flagged (train/checkpoint.h).
using SplitMembers = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

/// The members of a manifest's train, valid and test rows (others ignored).
SplitMembers split_members(const Manifest& manifest);

/// How `now` differs from `before`, one line per speaker and move, e.g.
/// "speaker 'dave': 12 utterance(s) test → train", "speaker 'eve': 3
/// utterance(s) new in train", "speaker 'bob': 2 utterance(s) train → (not in
/// the manifest)", or per utterance "utterance 'u7': speaker 'ann' → 'bob'".
/// Empty when they are equal. At most `max_lines` lines (then "… and N more").
std::vector<std::string> split_changes(const SplitMembers& before, const SplitMembers& now, size_t max_lines = 8);

/// For each speaker, its label for `task` if that label is the same for all
/// of the speaker's utterances (and present); speakers with mixed or missing
/// labels are absent. `task` is speaker-level when every speaker is present.
std::map<std::string, std::string> speaker_labels(const Manifest& manifest, const std::string& task);

struct ValidationOptions {
  /// The task to balance the validation set for ("" = none). If it is
  /// speaker-level (gender, age), `speakers_per_class` speakers of every
  /// class are chosen. If not (emotion: every speaker has every class),
  /// speakers are chosen at random, balanced by `stratify_by`.
  std::string task;
  /// Speaker-level task that balances the choice when `task` is not
  /// speaker-level; "" = the first speaker-level task whose name contains
  /// "gender", if any, else no balancing.
  std::string stratify_by;
  /// Speakers per class (per stratum). Without any stratum: speakers in total.
  int64_t speakers_per_class = 1;
  uint64_t seed = 0;
};

/// Moves whole training speakers to `valid`. Training speakers are those with
/// split "train" or, in a manifest without a split column, every speaker (the
/// result then has train and valid only). Every class keeps at least one
/// training speaker, else DataError. Same seed ⇒ same result.
/// `balanced_by` (if given) gets the column the choice was balanced by ("" = none).
Manifest carve_validation(const Manifest& manifest, const ValidationOptions& options,
                          std::string* balanced_by = nullptr);

struct KFoldOptions {
  int64_t k = 5;  ///< number of folds, >= 3 (test, valid and train each need one)
  uint64_t seed = 0;
};

/// Fold of every speaker: speakers are shuffled (seeded), then taken in order
/// of decreasing utterance count and each put in the fold with the fewest
/// utterances so far (ties: lowest fold). Folds thus differ in utterance
/// count by at most the largest speaker's count. Needs k <= #speakers.
std::map<std::string, int64_t> assign_speaker_folds(const Manifest& manifest, const KFoldOptions& options);

/// Cross-validation round `fold` (0..k-1): speakers of fold `fold` → test,
/// of fold (fold + 1) mod k → valid, all others → train. Ignores (overwrites)
/// any existing split column.
Manifest kfold(const Manifest& manifest, int64_t fold, const KFoldOptions& options);

}  // namespace crnn::data

#pragma once
/// \file recipes.h
/// Recipes: turn a public corpus in its native layout into a Manifest.
///
/// Every recipe only reads the layout and file names (it decodes no audio),
/// reports what it found and skipped, and declares its tasks with a natural
/// class order (usable as LabelSet's fixed order).
///
/// \code
///   crnn::data::PrepareReport report;
///   auto m = crnn::data::prepare("ravdess", "/corpora/ravdess", &report);
///   m.write("ravdess.csv");
///   // report.found == 1440, report.skipped.empty()
/// \endcode

#include <string>
#include <vector>

#include "crnn/data/manifest.h"

namespace crnn::data {

/// What a recipe did: files turned into rows, and files (or list entries)
/// skipped with the reason.
struct PrepareReport {
  size_t found = 0;
  std::vector<std::string> skipped;  ///< one "path: reason" line each
};

/// A task a recipe produces, with its classes in their natural order.
struct TaskSpec {
  std::string name;
  std::vector<std::string> classes;
};

/// Names of the built-in recipes ("ravdess", "speechocean762").
std::vector<std::string> recipe_names();
/// The tasks (and class orders) of a recipe; throws DataError for an unknown recipe.
const std::vector<TaskSpec>& recipe_tasks(const std::string& recipe);

/// RAVDESS speech (`Actor_NN/MM-VV-EE-II-SS-RR-AA.{wav,flac}`).
/// id = file stem, speaker = "Actor_NN", tasks emotion8, emotion2 (negative =
/// angry, fearful, disgust, sad), gender (odd actor = male). No split (the
/// corpus has none). Non-audio files and names that do not follow the
/// convention (or are not audio-only speech, or disagree with their actor
/// folder) are skipped and reported. Throws DataError if `dir` is missing or
/// holds no Actor_NN folder.
Manifest prepare_ravdess(const std::string& dir, PrepareReport* report = nullptr);

/// speechocean762 (`train/` and `test/` Kaldi lists: wav.scp, utt2spk,
/// spk2age, spk2gender). speaker = Kaldi speaker id, split = train / test
/// from the list the utterance is in, tasks gender3 (child if age <= 14,
/// else female / male) and age3 (child <= 14, youth 15-24, adult >= 25).
/// Entries whose audio file is missing, piped wav.scp commands and speakers
/// without age/gender are skipped and reported. Throws DataError if `dir`
/// or a list file is missing, or a list line is malformed.
Manifest prepare_speechocean762(const std::string& dir, PrepareReport* report = nullptr);

/// Dispatches on the recipe name.
Manifest prepare(const std::string& recipe, const std::string& dir, PrepareReport* report = nullptr);

}  // namespace crnn::data

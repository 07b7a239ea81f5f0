#include "crnn/train/data_warnings.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>

#include "crnn/data/normalization.h"
#include "crnn/util/text.h"

namespace crnn::train {

namespace {

/// "corpus.csv:12: utterance 'x'" (or "utterance 'x'" for a row built in code).
std::string where(const data::Utterance& u) {
  return (u.origin.empty() ? "" : u.origin + ": ") + "utterance '" + u.id + "'";
}

/// The split a row is in, for messages ("none" when it has none).
std::string split_of(const data::Utterance& u) { return u.split.empty() ? "none" : u.split; }

std::string folded(const std::string& name) { return name_key(name); }

/// folded(), and each run of digits without its leading zeros: "S01" and "s1"
/// (a spreadsheet drops the zero of a number-like id) are one key.
std::string folded_speaker(const std::string& name) {
  const std::string key = folded(name);
  std::string out;
  for (size_t i = 0; i < key.size();) {
    if (!std::isdigit(static_cast<unsigned char>(key[i]))) {
      out += key[i++];
      continue;
    }
    size_t end = i;
    while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
    size_t first = i;
    while (first + 1 < end && key[first] == '0') ++first;  // "000" keeps one zero
    out.append(key, first, end - first);
    i = end;
  }
  return out;
}

/// Whether `s` holds a combining mark U+0300..U+036F (UTF-8 CC 80 .. CD AF):
/// a decomposed (NFD) accent, which prints like the precomposed one.
bool has_combining_marks(const std::string& s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const auto a = static_cast<unsigned char>(s[i]), b = static_cast<unsigned char>(s[i + 1]);
    if ((a == 0xcc && b >= 0x80 && b <= 0xbf) || (a == 0xcd && b >= 0x80 && b <= 0xaf)) return true;
  }
  return false;
}

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

void warn_about_data(const data::Splits& split, const RunData& d, const DataConfig& config,
                     const std::vector<int64_t>& per_class, std::ostream& log) {
  // Labels are taken verbatim; ones that differ only in case or surrounding
  // spaces ("calm", "Calm", "calm ") are almost always one class typed twice.
  {
    std::map<std::string, std::vector<std::string>> by_folded;
    for (const auto& name : d.labels.names()) by_folded[folded(name)].push_back("'" + name + "'");
    for (const auto& [key, names] : by_folded)
      if (names.size() > 1)
        log << fmt::format("data: warning: classes {} of task '{}' differ only in case, spaces or accents; they are "
                           "separate classes (fix the manifest if they are one)\n",
                           fmt::join(names, ", "), config.task);
  }
  // A class with one or two training utterances is most often a typo of
  // another label; class balancing would repeat them up to the largest class.
  for (size_t c = 0; c < per_class.size(); ++c) {
    if (per_class[c] >= kFewestTrainingUtterances) continue;
    const std::string& name = d.labels.names()[c];
    std::vector<std::string> rows;
    for (const auto& u : split.train.utterances())
      if (u.label(config.task) == name) rows.push_back(where(u));
    log << fmt::format("data: warning: class '{}' of task '{}' has only {} training utterance(s) ({}); class "
                       "balancing copies them up to the largest class's {}. A typo of another label?\n",
                       name, config.task, per_class[c], fmt::join(rows, ", "),
                       *std::max_element(per_class.begin(), per_class.end()));
  }
  // UA recall averages the classes present: on a split missing some, a model
  // that predicts one class can score 100 % (and be selected as best).
  auto missing_classes = [&](const std::vector<data::Example>& split_examples) {
    std::vector<bool> seen(d.labels.size(), false);
    for (const auto& e : split_examples) seen[static_cast<size_t>(e.label)] = true;
    std::vector<std::string> missing;
    for (size_t c = 0; c < seen.size(); ++c)
      if (!seen[c]) missing.push_back(d.labels.names()[c]);
    return missing;
  };
  for (const auto& [name, examples] : {std::pair<const char*, const std::vector<data::Example>*>{"validation", &d.valid},
                                       {"test", &d.test}}) {
    const auto missing = missing_classes(*examples);
    if (!examples->empty() && !missing.empty())
      log << fmt::format("data: warning: the {} split has no utterances of class(es) {}; its UA recall averages "
                         "only the classes present{}",
                         name, fmt::join(missing, ", "),
                         std::string(name) == "validation" ? ", so model selection and early stopping are weak" : "")
          << "\n";
  }
  const std::vector<const data::Manifest*> parts = {&split.train, &split.valid, &split.test};
  // Speakers are ids too: "s6", "S6", "s6 " and "s06" are four speakers to
  // the speaker-independent split, so one person can sit in training and test.
  {
    std::map<std::string, std::map<std::string, const data::Utterance*>> by_folded;
    for (const auto* part : parts)
      for (const auto& u : part->utterances()) by_folded[folded_speaker(u.speaker)].emplace(u.speaker, &u);
    for (const auto& [key, spellings] : by_folded) {
      if (spellings.size() < 2) continue;
      std::vector<std::string> named;
      for (const auto& [speaker, u] : spellings)
        named.push_back(fmt::format("'{}'{} ({}, split {})", speaker,
                                    has_combining_marks(speaker) ? " [accents as combining marks, NFD]" : "",
                                    where(*u), split_of(*u)));
      log << fmt::format("data: warning: speakers {} differ only in case, spaces, accents (or their Unicode form) "
                         "or leading zeros; they count as different "
                         "speakers, so one person may be in more than one split (fix the manifest if they are "
                         "one)\n",
                         fmt::join(named, ", "));
    }
  }
  // One recording behind several rows: in two splits, the test set holds
  // training audio. Files are compared by device and inode (one stat per
  // row), so a symbolic or hard link to a file is that file; a path that
  // cannot be stat'ed is compared as written.
  {
    std::map<std::string, std::vector<const data::Utterance*>> by_path;
    for (const auto* part : parts)
      for (const auto& u : part->utterances()) {
        struct stat st {};
        by_path[::stat(u.path.c_str(), &st) == 0
                    ? fmt::format("inode {}:{}", static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino))
                    : std::filesystem::path(u.path).lexically_normal().string()]
            .push_back(&u);
      }
    size_t shown = 0, shared = 0;
    for (const auto& [resolved, rows] : by_path) {
      if (rows.size() < 2) continue;
      const std::string& path = rows.front()->path;  // as the first row names it
      ++shared;
      if (++shown > 3) continue;
      // Rows naming it by other paths (links) say which.
      const bool other_paths =
          std::any_of(rows.begin(), rows.end(), [&](const data::Utterance* u) { return u->path != path; });
      std::vector<std::string> named;
      for (const auto* u : rows)
        named.push_back(fmt::format("{} (split {}{})", where(*u), split_of(*u),
                                    other_paths ? ", " + u->path : ""));
      log << fmt::format("data: warning: {} is the audio of {} rows: {}\n", path, rows.size(), fmt::join(named, ", "));
    }
    if (shared > 3) log << fmt::format("data: warning: {} audio files in all are behind more than one row\n", shared);
  }
  // Utterances whose every frame is the same (silence, a constant, cancelling
  // channels) have nothing to classify but are trained on, scored and
  // normalized with their speaker like speech.
  {
    std::vector<std::string> named;
    const std::vector<std::pair<const std::vector<data::Example>*, const data::Manifest*>> sets = {
        {&d.train, &split.train}, {&d.valid, &split.valid}, {&d.test, &split.test}};
    for (const auto& [examples, part] : sets)
      for (const auto& e : *examples)
        if (data::holds_no_signal(e.features)) {
          const auto& u = part->find(e.id);
          named.push_back(fmt::format("{} (split {})", where(u), split_of(u)));
        }
    if (!named.empty())
      log << fmt::format("data: warning: {} utterance(s) {}: {}; they are trained on or scored like speech and "
                         "weigh in their speaker's normalization: remove them from the CSV\n",
                         named.size(), data::kNoSignal, first_few(named, 3));
  }
  // crnn classifies: numbers as labels are classes, ordered as text.
  {
    const auto& names = d.labels.names();
    if (names.size() >= 3 && std::all_of(names.begin(), names.end(), is_number))
      log << fmt::format("data: note: the labels of task '{}' are numbers ({}); each distinct value is a class "
                         "(crnn classifies, it does not regress): for groups such as age ranges, write the group "
                         "into the CSV\n",
                         config.task, fmt::join(names, ", "));
  }
  // Batches group neighbouring lengths, so a far longer utterance pads its
  // batch to its own length: memory and time of a batch of that length.
  if (!d.train.empty()) {
    std::vector<int64_t> frames;
    for (const auto& e : d.train) frames.push_back(e.features.size(0));
    std::vector<int64_t> sorted = frames;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    const int64_t median = sorted[sorted.size() / 2];
    const auto longest = std::max_element(frames.begin(), frames.end());
    if (median > 0 && static_cast<double>(*longest) > kLongUtteranceFactor * static_cast<double>(median)) {
      const auto& e = d.train[static_cast<size_t>(longest - frames.begin())];
      const auto& u = split.train.find(e.id);
      log << fmt::format("data: warning: the longest training utterance, {}, has {} frames, {:.0f} times the median "
                         "({}); its batch is padded to that length (memory and time grow with train.batch_size × "
                         "longest): cut such files, or lower train.batch_size\n",
                         where(u), *longest, static_cast<double>(*longest) / static_cast<double>(median), median);
    }
  }
}

}  // namespace crnn::train

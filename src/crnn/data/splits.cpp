#include "crnn/data/splits.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <vector>

#include "crnn/data/random.h"

namespace crnn::data {

namespace {

/// A row without a split in a manifest that has one: said as such, not as its
/// speaker being "in two splits: 'train' and '(none)'".
void refuse_empty_split_cells(const Manifest& manifest) {
  for (const auto& u : manifest.utterances())
    if (u.split.empty())
      throw DataError(fmt::format("{}utterance '{}' has no split (an empty split cell): give every row train, "
                                  "valid or test, or set data.folds = K to split by speakers instead "
                                  "(docs/splits.md)",
                                  u.origin.empty() ? "" : u.origin + ": ", u.id));
}

}  // namespace

void check_speaker_independent(const Manifest& manifest) {
  if (manifest.has_split()) refuse_empty_split_cells(manifest);
  std::map<std::string, const Utterance*> first;  // speaker → first utterance seen
  for (const auto& u : manifest.utterances()) {
    auto [it, inserted] = first.emplace(u.speaker, &u);
    if (!inserted && it->second->split != u.split) {
      auto name = [](const std::string& s) { return s.empty() ? std::string("(none)") : s; };
      auto where = [](const Utterance* x) { return x->origin.empty() ? x->id : x->id + ", " + x->origin; };
      throw DataError(fmt::format(
          "speaker '{}' is in two splits: '{}' ({}) and '{}' ({}); splits must be speaker-independent",
          u.speaker, name(it->second->split), where(it->second), name(u.split), where(&u)));
    }
  }
}

Splits split_by_column(const Manifest& manifest) {
  if (!manifest.has_split()) refuse_empty_split_cells(manifest);  // else check_speaker_independent does
  check_speaker_independent(manifest);
  return {manifest.subset("train"), manifest.subset("valid"), manifest.subset("test")};
}

std::map<std::string, std::string> speaker_labels(const Manifest& manifest, const std::string& task) {
  if (!manifest.has_task(task))
    throw DataError(fmt::format("manifest has no task '{}' (tasks: {})", task,
                                fmt::join(manifest.tasks(), ", ")));
  std::map<std::string, std::string> label;
  std::set<std::string> mixed;
  for (const auto& u : manifest.utterances()) {
    const std::string& l = u.label(task);
    if (l.empty()) {
      mixed.insert(u.speaker);
      continue;
    }
    auto [it, inserted] = label.emplace(u.speaker, l);
    if (!inserted && it->second != l) mixed.insert(u.speaker);
  }
  for (const auto& s : mixed) label.erase(s);
  return label;
}

namespace {
// Speaker-level labels of `task` if every speaker of `m` has exactly one.
bool speaker_level(const Manifest& m, const std::string& task, std::map<std::string, std::string>& out) {
  out = speaker_labels(m, task);
  return out.size() == m.speakers().size();
}
}  // namespace

Manifest carve_validation(const Manifest& manifest, const ValidationOptions& o, std::string* balanced_by) {
  if (o.speakers_per_class < 1)
    throw DataError(fmt::format("carve_validation: speakers_per_class must be >= 1, got {}",
                                o.speakers_per_class));
  check_speaker_independent(manifest);
  const bool had_split = manifest.has_split();
  if (had_split)
    for (const auto& u : manifest.utterances())
      if (u.split == "valid")
        throw DataError("carve_validation: the manifest already has a valid split");
  Manifest pool = had_split ? manifest.subset("train") : manifest;
  if (pool.empty()) throw DataError("carve_validation: no training utterances");

  // Decide the strata (see splits.h / docs/splits.md).
  std::map<std::string, std::string> strata;
  std::string by;
  std::map<std::string, std::string> tmp;
  if (!o.task.empty() && speaker_level(pool, o.task, tmp)) {
    strata = std::move(tmp);
    by = o.task;
  } else if (!o.stratify_by.empty()) {
    if (!pool.has_task(o.stratify_by))
      throw DataError(fmt::format("carve_validation: stratify_by: no label column '{}'", o.stratify_by));
    if (!speaker_level(pool, o.stratify_by, tmp))
      throw DataError(fmt::format("carve_validation: stratify_by task '{}' is not speaker-level "
                                  "(some speaker has several or no labels)",
                                  o.stratify_by));
    strata = std::move(tmp);
    by = o.stratify_by;
  } else {
    if (!o.task.empty() && !pool.has_task(o.task))
      throw DataError(fmt::format("carve_validation: no task '{}'", o.task));
    for (const auto& t : pool.tasks())
      if (t.find("gender") != std::string::npos && speaker_level(pool, t, tmp)) {
        strata = std::move(tmp);
        by = t;
        break;
      }
  }

  if (balanced_by) *balanced_by = by;
  std::map<std::string, std::vector<std::string>> groups;  // class → speakers (sorted)
  if (by.empty())
    groups[""] = pool.speakers();
  else
    for (const auto& [spk, cls] : strata) groups[cls].push_back(spk);

  Rng rng(o.seed);
  std::set<std::string> chosen;
  for (auto& [cls, spks] : groups) {
    if (static_cast<int64_t>(spks.size()) <= o.speakers_per_class)
      throw DataError(fmt::format(
          "carve_validation: {} has {} training speaker(s); cannot move {} to valid and keep one "
          "for training",
          by.empty() ? std::string("the corpus") : fmt::format("class '{}' of '{}'", cls, by),
          spks.size(), o.speakers_per_class));
    rng.shuffle(spks);
    chosen.insert(spks.begin(), spks.begin() + o.speakers_per_class);
  }

  Manifest out = manifest;
  for (size_t i = 0; i < out.size(); ++i) {
    Utterance& u = out.mutable_at(i);
    if (chosen.count(u.speaker))
      u.split = "valid";
    else if (!had_split)
      u.split = "train";
  }
  return out;
}

std::map<std::string, int64_t> assign_speaker_folds(const Manifest& manifest, const KFoldOptions& o) {
  if (o.k < 3)
    throw DataError(fmt::format("kfold: k must be >= 3 (test, valid and train folds), got {}", o.k));
  std::map<std::string, int64_t> count;
  for (const auto& u : manifest.utterances()) ++count[u.speaker];
  if (static_cast<int64_t>(count.size()) < o.k)
    throw DataError(fmt::format("kfold: {} speakers cannot fill {} folds", count.size(), o.k));

  std::vector<std::string> order;
  for (const auto& [s, n] : count) order.push_back(s);
  Rng rng(o.seed);
  rng.shuffle(order);  // random tie-break among equally large speakers
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return count[a] > count[b]; });
  std::vector<int64_t> load(static_cast<size_t>(o.k), 0);
  std::map<std::string, int64_t> fold;
  for (const auto& s : order) {
    size_t best = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    fold[s] = static_cast<int64_t>(best);
    load[best] += count[s];
  }
  return fold;
}

Manifest kfold(const Manifest& manifest, int64_t fold, const KFoldOptions& o) {
  auto folds = assign_speaker_folds(manifest, o);
  if (fold < 0 || fold >= o.k)
    throw DataError(fmt::format("kfold: fold {} out of range [0, {})", fold, o.k));
  const int64_t valid = (fold + 1) % o.k;
  Manifest out = manifest;
  for (size_t i = 0; i < out.size(); ++i) {
    Utterance& u = out.mutable_at(i);
    const int64_t f = folds.at(u.speaker);
    u.split = f == fold ? "test" : (f == valid ? "valid" : "train");
  }
  return out;
}

SplitMembers split_members(const Manifest& manifest) {
  SplitMembers out;
  for (const auto& u : manifest.utterances())
    if (u.split == "train" || u.split == "valid" || u.split == "test") out[u.split][u.speaker].push_back(u.id);
  for (auto& [split, speakers] : out)
    for (auto& [speaker, ids] : speakers) std::sort(ids.begin(), ids.end());
  return out;
}

std::vector<std::string> split_changes(const SplitMembers& before, const SplitMembers& now, size_t max_lines) {
  struct Place {
    std::string split, speaker;
  };
  auto places = [](const SplitMembers& m) {
    std::map<std::string, Place> out;
    for (const auto& [split, speakers] : m)
      for (const auto& [speaker, ids] : speakers)
        for (const auto& id : ids) out[id] = {split, speaker};
    return out;
  };
  const auto was = places(before), is = places(now);
  const std::string kAbsent = "(not in the manifest)";
  // (speaker, from, to) → utterances, for utterances that kept their speaker.
  std::map<std::tuple<std::string, std::string, std::string>, size_t> moves;
  std::vector<std::string> lines;
  for (const auto& [id, p] : was) {
    auto it = is.find(id);
    if (it == is.end()) ++moves[{p.speaker, p.split, kAbsent}];
    else if (it->second.speaker != p.speaker)
      lines.push_back(fmt::format("utterance '{}': speaker '{}' → '{}'", id, p.speaker, it->second.speaker));
    else if (it->second.split != p.split) ++moves[{p.speaker, p.split, it->second.split}];
  }
  for (const auto& [id, p] : is)
    if (!was.count(id)) ++moves[{p.speaker, "", p.split}];
  std::vector<std::string> out;
  for (const auto& [key, n] : moves) {
    const auto& [speaker, from, to] = key;
    out.push_back(from.empty() ? fmt::format("speaker '{}': {} utterance(s) new in {}", speaker, n, to)
                               : fmt::format("speaker '{}': {} utterance(s) {} → {}", speaker, n, from, to));
  }
  out.insert(out.end(), lines.begin(), lines.end());
  if (out.size() > max_lines) {
    const size_t more = out.size() - max_lines;
    out.resize(max_lines);
    out.push_back(fmt::format("… and {} more", more));
  }
  return out;
}

}  // namespace crnn::data

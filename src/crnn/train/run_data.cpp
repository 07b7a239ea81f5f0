#include "crnn/train/run_data.h"


#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <cctype>
#include <map>
#include <ostream>
#include <set>

#include "crnn/data/extract_features.h"
#include "crnn/data/splits.h"
#include "crnn/train/data_warnings.h"
#include "crnn/train/run_files.h"
#include "crnn/util/checksum.h"
#include "crnn/util/text.h"

namespace crnn::train {

void refuse_split_under_another_name(const data::Manifest& m, const DataConfig& config) {
  if (config.folds != 0 || config.split_column != "split" || m.has_split()) return;
  // A split under another name ('Split', 'set', 'partition') would silently
  // become cross-validation: the user's test speakers trained on.
  for (const auto& column : m.tasks()) {
    if (column == config.task) continue;
    size_t given = 0;
    bool only_splits = true;
    for (const auto& u : m.utterances()) {
      const std::string& v = u.label(column);
      if (v.empty()) continue;
      ++given;
      only_splits &= v == "train" || v == "valid" || v == "test";
    }
    if (given > 0 && only_splits)
      throw ConfigError(fmt::format(
          "{}: the manifest has no 'split' column, but its column '{}' holds only train / valid / test: rename it "
          "to 'split', or set data.split_column = \"{}\" (or set data.folds = K to cross-validate over speakers "
          "instead, as crnn does for a manifest without a split; docs/splits.md)",
          config.manifest, column, column));
  }
}

data::Manifest assign_splits(const data::Manifest& manifest_in, const DataConfig& config, std::string* source) {
  data::Manifest m = manifest_in;
  auto say = [&](const std::string& text) {
    if (source) *source = text;
  };
  // The data protocol follows the data: a split the manifest defines is used
  // as it is; k-fold cross-validation only when the config asks for it, or
  // when the manifest has no split at all.
  const bool custom_column = config.split_column != "split";
  // Speaker-group k-fold needs 3 speakers at least (train, validation, test).
  auto require_three_speakers = [&](size_t speakers) {
    if (speakers < 3)
      throw data::DataError(fmt::format("{}: {} speaker(s); speaker-independent training needs at least 3 (one each "
                                        "for train, validation and test)",
                                        config.manifest, speakers));
  };
  if (config.folds == 0 && !custom_column && !m.has_split()) {
    data::KFoldOptions ko;
    ko.k = kDefaultFolds;
    ko.seed = config.split_seed;
    say(fmt::format("{}-fold speaker-group cross-validation, fold {} as test and fold {} as validation (the manifest "
                    "has no split column; set data.folds to choose k)",
                    ko.k, config.fold % ko.k, (config.fold + 1) % ko.k));
    const size_t speakers = m.speakers().size();
    require_three_speakers(speakers);
    if (speakers < static_cast<size_t>(ko.k))
      throw data::DataError(fmt::format(
          "{}: the manifest has no split column, so crnn splits it by speakers into {} folds, but it has only {} "
          "speaker(s); add a split column (train / valid / test per row), or set data.folds = K with 3 <= K <= {} "
          "(docs/splits.md)",
          config.manifest, ko.k, speakers, speakers));
    return data::kfold(m, config.fold % ko.k, ko);
  }
  if (config.folds > 0) {
    data::KFoldOptions ko;
    ko.k = config.folds;
    ko.seed = config.split_seed;
    say(fmt::format("{}-fold speaker-group cross-validation (data.folds = {}), fold {} as test and fold {} as "
                    "validation{}",
                    ko.k, ko.k, config.fold, (config.fold + 1) % ko.k,
                    m.has_split() ? "; the manifest's own split column is not used" : ""));
    const size_t speakers = m.speakers().size();
    require_three_speakers(speakers);
    if (speakers < static_cast<size_t>(ko.k))
      throw ConfigError(fmt::format("{}: data.folds = {}, but the manifest has only {} speaker(s); set data.folds to "
                                    "at most {} (each fold needs a speaker)",
                                    config.manifest, ko.k, speakers, speakers));
    return data::kfold(m, config.fold, ko);
  }
  if (custom_column) {
    if (!m.has_task(config.split_column))
      throw ConfigError(fmt::format("{}: data.split_column: the manifest has no column '{}'",
                                    config.manifest, config.split_column));
    for (size_t i = 0; i < m.size(); ++i) {
      auto& u = m.mutable_at(i);
      u.split = u.label(config.split_column);
      if (!u.split.empty() && u.split != "train" && u.split != "valid" && u.split != "test")
        throw ConfigError(fmt::format("{}: row '{}': split column '{}' holds '{}' (expected train, valid or test)",
                                      config.manifest, u.id, config.split_column, u.split));
    }
  }
  if (!m.has_split())
    throw ConfigError(fmt::format(
        "{}: the manifest has no split (column '{}'); give one, or set data.folds for speaker-group "
        "cross-validation",
        config.manifest, config.split_column));
  bool has_valid = false;
  for (const auto& u : m.utterances()) has_valid |= u.split == "valid";
  if (!has_valid) {
    data::ValidationOptions vo;
    vo.task = config.task;
    vo.speakers_per_class = config.valid_speakers_per_class;
    vo.stratify_by = config.stratify_by;
    vo.seed = config.split_seed;
    std::string by;
    m = data::carve_validation(m, vo, &by);
    std::set<std::string> carved;
    for (const auto& u : m.utterances())
      if (u.split == "valid") carved.insert(u.speaker);
    say(fmt::format("the manifest's column '{}' (train / test), with {} training speaker(s) carved as the validation "
                    "set ({}; data.valid_speakers_per_class{})",
                    config.split_column, carved.size(),
                    by.empty() ? fmt::format("{} in all, no speaker-level column to balance by",
                                             config.valid_speakers_per_class)
                               : fmt::format("{} per '{}' class", config.valid_speakers_per_class, by),
                    by.empty() ? ", data.stratify_by" : ""));
  } else {
    say(fmt::format("the manifest's column '{}' (train / valid / test)", config.split_column));
  }
  return m;
}

data::Manifest select_split(const data::Manifest& manifest, const DataConfig& config, const std::string& split,
                            std::string* source) {
  if (split != "all" && split != "train" && split != "valid" && split != "test")
    throw ConfigError(fmt::format("unknown split '{}' (expected train, valid, test or all)", split));
  if (split == "all") {
    if (source) *source = "every row of the manifest";
    return manifest;
  }
  // The split column's test rows are the test set as is (carving a validation
  // set only moves training speakers), so a test-only manifest evaluates too.
  const bool test_as_is = split == "test" && config.folds == 0 && config.split_column == "split" && manifest.has_split();
  data::Manifest part;
  try {
    if (test_as_is && source) *source = "the manifest's split column, its test rows";
    part = test_as_is ? manifest.subset("test") : assign_splits(manifest, config, source).subset(split);
  } catch (const data::DataError& e) {
    // From carving validation speakers, or the folds: name the file and the split asked for.
    throw data::DataError(fmt::format("{}: cannot select split '{}': {} (to evaluate every row, use split 'all')",
                                      config.manifest, split, e.what()));
  }
  if (part.empty()) throw data::DataError(fmt::format("{}: empty split '{}' (no rows)", config.manifest, split));
  return part;
}

std::vector<data::Example> load_examples(const data::Manifest& manifest, const data::FeatureStore& store,
                                         const std::string& task, const data::LabelSet& labels,
                                         std::vector<std::string>* skipped, std::vector<torch::Tensor>* raw,
                                         const data::FeatureStats* fixed_stats) {
  // Every speaker's statistics over all its frames (SPEC §3), then standardize.
  std::map<std::string, std::vector<torch::Tensor>> by_speaker;
  std::vector<std::pair<const data::Utterance*, torch::Tensor>> rows;
  for (const auto& u : manifest.utterances()) {
    const std::string& label = u.label(task);
    if (label.empty()) {
      if (skipped) skipped->push_back(u.id + ": no '" + task + "' label");
      continue;
    }
    auto x = store.read(u.id);
    if (x.dim() != 2 || x.size(0) == 0) {
      if (skipped) skipped->push_back(u.id + ": no feature frames (audio shorter than one frame)");
      continue;
    }
    by_speaker[u.speaker].push_back(x);
    rows.emplace_back(&u, x);
    if (raw) raw->push_back(x);
  }
  if (rows.empty()) return {};
  data::SpeakerStats stats;
  if (!fixed_stats) stats = data::compute_speaker_stats(by_speaker);
  std::vector<data::Example> out;
  out.reserve(rows.size());
  for (auto& [u, x] : rows) {
    data::Example e;
    e.features = (fixed_stats ? data::apply(x, *fixed_stats) : stats.apply(x, u->speaker)).contiguous();
    e.label = labels.index_of(*u, task);  // a model's classes against another manifest: names the row
    e.id = u->id;
    out.push_back(std::move(e));
  }
  return out;
}

void check_features_cover(const data::FeatureStore& store, const data::Manifest& manifest,
                          const std::string& features_path, const std::string& manifest_path) {
  std::vector<std::string> missing;
  for (const auto& u : manifest.utterances())
    if (!store.contains(u.id)) missing.push_back(u.id);
  if (!missing.empty()) {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(5, missing.size()); ++i) first += (i ? ", " : "") + missing[i];
    const auto damaged = store.set_aside();
    throw data::DataError(fmt::format(
        "{}: does not cover the manifest {}: {} of {} utterances have no features (first: {}){}; run "
        "`crnn features {} -o {}{}` to extract them, or drop those rows (files it reported as failed or "
        "shorter than one frame are never stored: add `--keep-going --covered-manifest COVERED.csv` to that "
        "command for a manifest of the rows that have features)",
        features_path, manifest_path, missing.size(), manifest.size(), first,
        damaged.empty() ? "" : fmt::format(", {} of them stored but damaged (first: {})", damaged.size(), damaged[0]),
        manifest_path, features_path, data::command_options(store.extractor())));
  }
  // As `crnn features` refuses to resume into it: rows computed from other audio files.
  std::vector<std::pair<std::string, std::string>> id_paths;
  for (const auto& u : manifest.utterances()) id_paths.emplace_back(u.id, u.path);
  const auto moved = data::moved_sources(store, id_paths);
  if (!moved.empty())
    throw data::DataError(fmt::format("{}: holds features of other audio files than the manifest {} names for {} "
                                      "id(s), e.g.\n  {}\nRun `crnn features {} -o NEW.h5{}` and use that file.",
                                      features_path, manifest_path, moved.size(), moved.front(), manifest_path,
                                      data::command_options(store.extractor())));
  // Audio rewritten in place since: the stored rows describe its old content.
  const auto changed = data::changed_sources(store, id_paths);
  if (!changed.empty())
    throw data::DataError(fmt::format("{}: the features of {} utterance(s) were computed from an earlier version of "
                                      "their audio file (it changed since: size or content), e.g. '{}' ({}); run "
                                      "`crnn features {} -o {}{}` to recompute them",
                                      features_path, changed.size(), changed.front(), store.source(changed.front()),
                                      manifest_path, features_path, data::command_options(store.extractor())));
}

void check_features_match(const std::string& features_extractor, const std::string& model_extractor,
                          const std::string& features_path, const std::string& model_path) {
  if (features_extractor != model_extractor)
    throw data::DataError(fmt::format("{}: features made with other options than {} was trained on:\n  file:  {}\n  model: {}",
                                      features_path, model_path, features_extractor, model_extractor));
}

std::string manifest_checksum(const data::Manifest& manifest, const DataConfig& config) {
  std::vector<const data::Utterance*> rows;
  for (const auto& u : manifest.utterances()) rows.push_back(&u);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->id < b->id; });
  uint32_t crc = 0;
  for (const auto* u : rows) {
    const std::string& split = config.split_column == "split" ? u->split : u->label(config.split_column);
    const std::string& stratum = config.stratify_by.empty() ? std::string() : u->label(config.stratify_by);
    // Fields separated by a byte no CSV cell holds unquoted in practice (0x1f, unit separator).
    crc = crnn::crc32(u->id + '\x1f' + u->speaker + '\x1f' + u->label(config.task) + '\x1f' + split + '\x1f' +
                          stratum + '\n',
                      crc);
  }
  return fmt::format("{:08x}", crc);
}

std::string manifest_changed_since(const std::string& run_dir, const DataConfig& config,
                                   std::map<std::string, std::string>* current) {
  std::string recorded;
  try {
    recorded = read_run_summary((std::filesystem::path(run_dir) / "summary.json").string()).manifest_crc32;
  } catch (const RunFileError&) {
    return "";
  }
  if (recorded.empty()) return "";
  // A manifest path relative to another working directory is not found from
  // here: the run's config.toml records the one it read, absolute.
  std::string manifest = config.manifest;
  std::error_code ec;
  if (!manifest.empty() && !std::filesystem::is_regular_file(manifest, ec)) {
    try {
      manifest = RunConfig::from_file((std::filesystem::path(run_dir) / "config.toml").string()).data.manifest;
    } catch (const std::exception&) {  // no readable config.toml: nothing to compare
    }
  }
  // What the checksum covers: the file and the columns it reads.
  const std::string key = manifest + '\n' + config.task + '\n' + config.split_column + '\n' + config.stratify_by;
  std::map<std::string, std::string> local;
  auto& known = current ? *current : local;
  auto it = known.find(key);
  if (it == known.end()) {
    std::string now;  // "": not there or unreadable (training would say why); nothing to compare
    if (!manifest.empty() && std::filesystem::is_regular_file(manifest, ec)) {
      try {
        now = manifest_checksum(data::Manifest::read(manifest), config);
      } catch (const std::exception&) {
      }
    }
    it = known.emplace(key, now).first;
  }
  const std::string& now = it->second;
  if (now.empty() || now == recorded) return "";
  return fmt::format("{} was trained on other rows of {} (CRC-32 {} of its ids, speakers, '{}' labels and splits; "
                     "{} now): a label, speaker or split has changed since, so the run's numbers are not of the "
                     "manifest as it is",
                     run_dir, manifest, recorded, config.task, now);
}

RunData load_run_data(const DataConfig& config, std::ostream& log, bool new_run) {
  if (config.manifest.empty()) throw ConfigError("data.manifest: not set");
  if (config.features.empty()) throw ConfigError("data.features: not set");
  if (config.task.empty()) throw ConfigError("data.task: not set (the label column to classify)");
  auto manifest = data::Manifest::read(config.manifest);
  if (!manifest.has_task(config.task)) {
    std::string cols;
    for (auto& t : manifest.tasks()) cols += (cols.empty() ? "" : ", ") + t;
    throw ConfigError(fmt::format("{}: no label column '{}' (label columns: {})", config.manifest,
                                  config.task, cols.empty() ? "none" : cols));
  }
  // Checked whether or not validation gets carved, so a misspelt column is found now.
  if (!config.stratify_by.empty() && !manifest.has_task(config.stratify_by))
    throw ConfigError(fmt::format("data.stratify_by: {}: no label column '{}' (label columns: {})", config.manifest,
                                  config.stratify_by, fmt::join(manifest.tasks(), ", ")));
  RunData d;
  d.manifest_crc32 = manifest_checksum(manifest, config);
  d.labels = data::LabelSet::from_manifest(manifest, config.task);
  if (d.labels.size() < 2)
    throw ConfigError(fmt::format("{}: task '{}' has {} class(es); need at least 2", config.manifest,
                                  config.task, d.labels.size()));
  auto store = data::FeatureStore::open(config.features, data::FeatureStore::Mode::Read);
  check_features_cover(store, manifest, config.features, config.manifest);
  d.features = store.attributes();
  if (new_run) refuse_split_under_another_name(manifest, config);
  const data::Manifest assigned = assign_splits(manifest, config, &d.split_source);
  auto split = data::split_by_column(assigned);
  d.members = data::split_members(assigned);

  // Global statistics over the raw training frames: the normalization with
  // data.normalization = "global", else the fallback for unseen speakers.
  std::vector<torch::Tensor> raw_train;
  d.train = load_examples(split.train, store, config.task, d.labels, &d.skipped, &raw_train);
  d.global_stats = data::compute_stats(raw_train);
  const data::FeatureStats* fixed = nullptr;
  if (config.normalization == "global") {
    fixed = &d.global_stats;
    for (size_t i = 0; i < d.train.size(); ++i) d.train[i].features = data::apply(raw_train[i], *fixed).contiguous();
  }
  d.valid = load_examples(split.valid, store, config.task, d.labels, &d.skipped, nullptr, fixed);
  d.test = load_examples(split.test, store, config.task, d.labels, &d.skipped, nullptr, fixed);
  if (d.train.empty()) throw data::DataError(config.manifest + ": empty split: no training utterances");
  if (d.valid.empty()) throw data::DataError(config.manifest + ": empty split: no validation utterances");
  // A class without training utterances cannot be learned; oversampling has
  // nothing to repeat and its recall would be 0 by construction.
  std::vector<int64_t> per_class(d.labels.size(), 0);
  for (const auto& e : d.train) ++per_class[e.label];
  std::vector<std::string> untrained;
  for (size_t c = 0; c < per_class.size(); ++c)
    if (per_class[c] == 0) untrained.push_back(d.labels.names()[c]);
  if (!untrained.empty()) {
    // Where the first of them is, so the row can be found in the CSV.
    std::string first;
    for (const auto& u : assigned.utterances())
      if (u.label(config.task) == untrained.front() && !u.origin.empty()) {
        first = fmt::format(" ('{}' first at {}, split '{}')", untrained.front(), u.origin, u.split);
        break;
      }
    throw data::DataError(fmt::format("{}: class(es) {} of task '{}' have no training utterances (only in "
                                      "valid/test or skipped){}; drop those rows or relabel them",
                                      config.manifest, fmt::join(untrained, ", "), config.task, first));
  }
  d.input_size = d.train.front().features.size(1);
  d.train_speakers = static_cast<int64_t>(split.train.speakers().size());
  d.valid_speakers = static_cast<int64_t>(split.valid.speakers().size());
  d.test_speakers = static_cast<int64_t>(split.test.speakers().size());

  log << fmt::format("data: split: {}", d.split_source) << "\n";
  log << fmt::format("data: task {} ({} classes: {}), train {} utt / {} spk, valid {} / {}, test {} / {}",
                     config.task, d.labels.size(), fmt::join(d.labels.names(), ", "), d.train.size(),
                     d.train_speakers, d.valid.size(), d.valid_speakers, d.test.size(), d.test_speakers)
      << "\n";
  warn_about_data(split, d, config, per_class, log);
  if (!d.skipped.empty()) {
    log << fmt::format("data: skipped {} utterance(s):", d.skipped.size()) << "\n";
    for (size_t i = 0; i < std::min<size_t>(10, d.skipped.size()); ++i) log << "  " << d.skipped[i] << "\n";
    if (d.skipped.size() > 10) log << "  …\n";
  }
  return d;
}

std::string training_speakers_warning(const data::SplitMembers& trained, const data::Manifest& part,
                                      const std::string& split, const std::string& model_path) {
  if (split != "valid" && split != "test") return "";
  const auto train = trained.find("train");
  if (train == trained.end()) return "";
  // The same utterance (id) of the same speaker: speaker names alone would
  // flag another corpus whose speakers happen to be called "01" or "spk1" too.
  std::set<std::string> speakers;
  size_t rows = 0;
  for (const auto& u : part.utterances()) {
    const auto spk = train->second.find(u.speaker);
    if (spk != train->second.end() && std::binary_search(spk->second.begin(), spk->second.end(), u.id)) {
      speakers.insert(u.speaker);
      ++rows;
    }
  }
  if (rows == 0) return "";
  std::vector<std::string> named(speakers.begin(), speakers.end());
  const size_t more = named.size() > 5 ? named.size() - 5 : 0;
  named.resize(std::min<size_t>(named.size(), 5));
  return fmt::format("{} of the {} {} utterances were in the training split of {} (speakers {}{}): this is not a "
                     "speaker-independent score. The manifest's split changed since training; the model file "
                     "records who it was trained on",
                     rows, part.size(), split, model_path, fmt::join(named, ", "),
                     more ? fmt::format(" and {} more", more) : "");
}

}  // namespace crnn::train

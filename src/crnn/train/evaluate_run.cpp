#include "crnn/train/evaluate_run.h"

#include <fmt/core.h>

#include <filesystem>
#include <tuple>

#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"

namespace crnn::train {

EvalRun evaluate_run(const EvalRequest& r) {
  EvalRun out;
  out.model_path = model_file(r.model);
  auto loaded = load_model(out.model_path);
  auto cfg = RunConfig::parse(loaded.bundle.config_toml, {}, out.model_path);
  // Default data: the run's own manifest and features and split rule.
  DataConfig dc = cfg.data;
  if (!r.manifest.empty()) dc.manifest = r.manifest;
  if (!r.features.empty()) dc.features = r.features;
  // The run's own data files, moved or deleted since: say where the path came from and the way out.
  for (const auto& [path, given, key, hint] :
       {std::tuple<std::string, bool, const char*, std::string>{dc.manifest, !r.manifest.empty(), "manifest",
                                                                r.manifest_hint},
        {dc.features, !r.features.empty(), "features", r.features_hint}})
    if (!std::filesystem::exists(path))
      throw data::DataError(given ? fmt::format("{}: file not found (the {} given)", path, key)
                                  : fmt::format("{}: file not found (data.{} of the run's config; give {} to use "
                                                "another)",
                                                path, key, hint));
  auto manifest = data::Manifest::read(dc.manifest);
  out.task = loaded.bundle.task;
  if (!manifest.has_task(out.task))
    throw data::DataError(fmt::format("{}: no label column '{}' (the model's task)", dc.manifest, out.task));
  out.part = select_split(manifest, dc, r.split, &out.split_source);
  out.training_speakers = training_speakers_warning(loaded.bundle.splits, out.part, r.split, out.model_path);
  auto store = data::FeatureStore::open(dc.features, data::FeatureStore::Mode::Read);
  check_features_cover(store, out.part, dc.features, dc.manifest);
  check_features_match(store.extractor(), loaded.bundle.feature_extractor, dc.features, out.model_path);
  out.labels = data::LabelSet(loaded.bundle.labels, out.task);
  // The model's own normalization: per speaker, or the training set's global statistics.
  const data::FeatureStats* fixed = cfg.data.normalization == "global" ? &loaded.bundle.global_stats : nullptr;
  out.examples = load_examples(out.part, store, out.task, out.labels, &out.skipped, nullptr, fixed);
  if (out.examples.empty())
    throw data::DataError(
        fmt::format("{}: nothing to evaluate in split '{}' (every utterance skipped)", dc.manifest, r.split));
  if (const int64_t bins = out.examples.front().features.size(1); bins != loaded.bundle.input_size)
    throw data::DataError(fmt::format("{}: features have {} values per frame, the model {} expects {} ({})",
                                      dc.features, bins, out.model_path, loaded.bundle.input_size,
                                      loaded.bundle.feature_extractor));
  out.evaluation = evaluate(loaded.model, out.examples, out.labels.size(), r.batch_size, r.keep_probabilities);
  out.result = eval_result(out.evaluation, r.split, out.task, out.labels.names());
  return out;
}

}  // namespace crnn::train

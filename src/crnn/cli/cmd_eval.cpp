// `crnn eval RUNDIR|MODEL.pt --manifest M --features F --split test [--json FILE]`.
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <tuple>

#include "crnn/cli/command.h"
#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/run_data.h"
#include "crnn/train/trainer.h"
#include "crnn/infer/classifier.h"
#include "crnn/infer/predictions.h"

namespace {

struct EvalCliOptions {
  std::string model, manifest, features, split = "test", json, predictions;
  int64_t batch_size = 32;
  std::string precision = "fp32";
};

int run_eval(const EvalCliOptions& o) {
  using namespace crnn;
  // Before the evaluation, not after it: a --json path that cannot be written.
  if (!o.json.empty()) crnn::check_output_file_path(o.json);
  if (!o.predictions.empty()) crnn::check_output_file_path(o.predictions);
  const std::string model_path = train::model_file(o.model);
  auto loaded = train::load_model(model_path);
  auto cfg = train::RunConfig::parse(loaded.bundle.config_toml, {}, model_path);
  // Default data: the run's own manifest and features and split rule.
  train::DataConfig dc = cfg.data;
  if (!o.manifest.empty()) dc.manifest = o.manifest;
  if (!o.features.empty()) dc.features = o.features;
  // The run's own data files, moved or deleted since: say where the path came from and the way out.
  for (const auto& [path, given, key, option] :
       {std::tuple<std::string, bool, const char*, const char*>{dc.manifest, !o.manifest.empty(), "data.manifest",
                                                                "--manifest"},
        {dc.features, !o.features.empty(), "data.features", "--features"}})
    if (!std::filesystem::exists(path))
      throw data::DataError(given ? fmt::format("{}: file not found (given with {})", path, option)
                                  : fmt::format("{}: file not found ({} of the run's config; give {} FILE to use "
                                                "another)",
                                                path, key, option));
  auto manifest = data::Manifest::read(dc.manifest);
  if (!manifest.has_task(loaded.bundle.task))
    throw data::DataError(fmt::format("{}: no label column '{}' (the model's task)", dc.manifest, loaded.bundle.task));
  const data::Manifest part = train::select_split(manifest, dc, o.split);
  const std::string leak = train::training_speakers_warning(loaded.bundle.splits, part, o.split, model_path);
  if (!leak.empty()) fmt::print(stderr, "crnn eval: warning: {}\n", leak);
  auto store = data::FeatureStore::open(dc.features, data::FeatureStore::Mode::Read);
  train::check_features_cover(store, part, dc.features, dc.manifest);
  train::check_features_match(store.extractor(), loaded.bundle.feature_extractor, dc.features, model_path);
  data::LabelSet labels(loaded.bundle.labels, loaded.bundle.task);
  std::vector<std::string> skipped;
  // The model's own normalization: per speaker, or the training set's global statistics.
  const data::FeatureStats* fixed = cfg.data.normalization == "global" ? &loaded.bundle.global_stats : nullptr;
  auto examples = train::load_examples(part, store, loaded.bundle.task, labels, &skipped, nullptr, fixed);
  for (auto& s : skipped) fmt::print(stderr, "skipped {}\n", s);
  if (examples.empty()) throw data::DataError(fmt::format("{}: nothing to evaluate in split '{}' (every utterance skipped)", dc.manifest, o.split));
  if (const int64_t bins = examples.front().features.size(1); bins != loaded.bundle.input_size)
    throw data::DataError(fmt::format("{}: features have {} values per frame, the model {} expects {} ({})", dc.features,
                                      bins, model_path, loaded.bundle.input_size, loaded.bundle.feature_extractor));
  const auto precision = train::precision_guard(o.precision, "--precision bf16");
  auto e = train::evaluate(loaded.model, examples, labels.size(), o.batch_size,
                           /*keep_probabilities=*/!o.predictions.empty());
  fmt::print("{}", train::evaluation_table(e, o.split, labels.names()));
  if (!o.json.empty())
    train::write_eval_json(o.json, train::eval_result(e, o.split, loaded.bundle.task, labels.names()));
  // Per utterance, in the format (and with the numbers) of `crnn predict --manifest`.
  if (!o.predictions.empty())
    infer::write_predictions_csv(o.predictions,
                                 infer::predictions_of(e, examples, part, loaded.bundle.task, labels.names()),
                                 labels.names());
  return 0;
}

crnn::cli::Registrar reg{
    "eval",
    "Evaluate a trained model: UA recall, WA, per-class recall, confusion matrix",
    [](CLI::App& app) {
      auto o = std::make_shared<EvalCliOptions>();
      app.add_option("model", o->model, "Run directory (uses best.pt) or model file")->required();
      app.add_option("--manifest", o->manifest, "Manifest (default: the run's)");
      app.add_option("--features", o->features, "Feature file (default: the run's)");
      app.add_option("--split", o->split, "train | valid | test | all (split as in the run's config)")
          ->check(CLI::IsMember({"train", "valid", "test", "all"}));
      app.add_option("--json", o->json, "Also write the results as JSON to FILE");
      app.add_option("--predictions", o->predictions,
                     "Also write per-utterance predictions as CSV to FILE (id, path, speaker, truth, label, frames, "
                     "a probability per class)");
      app.add_option("--batch-size", o->batch_size, "Batch size")->check(crnn::cli::IntRange(1, 1 << 20));
      crnn::cli::add_precision_option(app, o->precision);
      return [o] { return run_eval(*o); };
    },
    40};

}  // namespace

// `crnn eval RUNDIR|MODEL.pt --manifest M --features F --split test [--json FILE]`.
#include <fmt/core.h>

#include <memory>

#include "crnn/cli/command.h"
#include "crnn/infer/classifier.h"
#include "crnn/infer/predictions.h"
#include "crnn/train/evaluate_run.h"
#include "crnn/train/run_files.h"
#include "crnn/train/trainer.h"
#include "crnn/util/file_io.h"

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
  const auto precision = train::precision_guard(o.precision, "--precision bf16");
  train::EvalRequest request;
  request.model = o.model;
  request.manifest = o.manifest;
  request.features = o.features;
  request.split = o.split;
  request.batch_size = o.batch_size;
  request.keep_probabilities = !o.predictions.empty();
  request.manifest_hint = "--manifest FILE";
  request.features_hint = "--features FILE";
  const auto run = train::evaluate_run(request);
  // As `crnn train` says it: the run's config decides the split (e.g. its
  // folds), which may not be a given manifest's own split column.
  fmt::print(stderr, "crnn eval: split '{}': {} ({} rows)\n", o.split, run.split_source, run.part.size());
  if (!run.training_speakers.empty()) fmt::print(stderr, "crnn eval: warning: {}\n", run.training_speakers);
  for (auto& s : run.skipped) fmt::print(stderr, "skipped {}\n", s);
  const auto& e = run.evaluation;
  const auto& labels = run.labels;
  fmt::print("{}", train::evaluation_table(e, o.split, labels.names()));
  if (!o.json.empty())
    train::write_eval_json(o.json, run.result);
  // Per utterance, in the format (and with the numbers) of `crnn predict --manifest`.
  if (!o.predictions.empty())
    infer::write_predictions_csv(o.predictions, run);
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

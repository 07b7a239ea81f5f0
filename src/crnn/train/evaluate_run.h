#pragma once
/// \file evaluate_run.h
/// A trained model on a split of a manifest: `crnn eval` and Python's
/// crnn.evaluate both run this. The model's own data (manifest, features,
/// split rule, normalization) unless others are given; the checks that keep a
/// score honest (the features' extractor, the split's training speakers).
///
/// \code
///   crnn::train::EvalRequest r;
///   r.model = "runs/clstm";          // its best.pt
///   r.split = "test";
///   auto run = crnn::train::evaluate_run(r);
///   std::cout << crnn::train::evaluation_table(run.evaluation, r.split, run.labels.names());
/// \endcode

#include <cstdint>
#include <string>
#include <vector>

#include "crnn/data/manifest.h"
#include "crnn/train/trainer.h"

namespace crnn::train {

struct EvalRequest {
  std::string model;      ///< run directory (its best.pt) or model file
  std::string manifest;   ///< "" = the run's own data.manifest
  std::string features;   ///< "" = the run's own data.features
  std::string split = "test";  ///< train | valid | test | all, split as the run's config says
  int64_t batch_size = 32;
  bool keep_probabilities = false;  ///< per-utterance probabilities (for predictions)
  /// How the caller's user gives another manifest / feature file, for the
  /// message when the run's own is gone ("--features FILE", "features=...").
  std::string manifest_hint = "another manifest", features_hint = "another feature file";
};

struct EvalRun {
  std::string model_path;  ///< the model file evaluated
  std::string task;
  data::LabelSet labels;
  data::Manifest part;                 ///< the split's rows
  std::string split_source;            ///< where the split came from, in words (as the run's config splits)
  std::vector<data::Example> examples;  ///< the evaluated utterances (normalized as the model was trained)
  Evaluation evaluation;
  EvalResult result;                   ///< what eval_<split>.json / `crnn eval --json` hold
  std::vector<std::string> skipped;    ///< "id: reason" for rows left out
  std::string training_speakers;       ///< a warning when the split holds training utterances, or ""
};

/// Throws data::DataError naming the file and the problem: a missing manifest
/// or feature file (saying whether it was the run's own or given), no label
/// column for the model's task, features that do not cover the split or were
/// made with other options than the model's, nothing left to evaluate.
EvalRun evaluate_run(const EvalRequest& request);

}  // namespace crnn::train

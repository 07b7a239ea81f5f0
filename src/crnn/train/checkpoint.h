#pragma once
/// \file checkpoint.h
/// Model files and training checkpoints (one format, LibTorch archives).
///
/// A model file is self-contained: the resolved run config (architecture),
/// task and label names, feature extractor description and the training-set
/// normalization statistics, so `crnn predict MODEL.pt audio.wav` needs
/// nothing else. A checkpoint adds the optimizer state, the epoch counters and
/// the RNG state, so `crnn train --resume` continues exactly. Files are
/// written to a temporary name and renamed: a crash never leaves a torn file.
///
/// \code
///   crnn::train::save_checkpoint("run/best.pt", model, &optimizer, bundle, &state);
///   auto loaded = crnn::train::load_model("run/best.pt");
///   auto log_p = loaded.model(x);
/// \endcode

#include <torch/torch.h>

#include <string>
#include <vector>

#include "crnn/data/normalization.h"
#include "crnn/data/splits.h"
#include "crnn/nn/sequence_classifier.h"

namespace crnn::train {

/// Everything besides the weights that a model file carries.
struct ModelBundle {
  std::string config_toml;           ///< RunConfig::to_toml() of the run
  std::string task;
  std::vector<std::string> labels;   ///< class names, index order
  int64_t input_size = 0;
  int64_t sample_rate = 16000;
  std::string feature_extractor;     ///< audio::describe(FbankOptions) of the features
  data::FeatureStats global_stats;   ///< fallback normalization (training frames)
  /// Who was in which split when the model was trained (empty in model files
  /// from before crnn recorded it): a resume with another split is refused,
  /// and `crnn eval` / `crnn predict --manifest` warn about test or valid
  /// rows of training speakers.
  data::SplitMembers splits;
};

/// Where training stands (checkpoints only).
struct TrainingState {
  int64_t epoch = 0;          ///< epochs completed
  int64_t best_epoch = 0;
  double best_metric = 0;     ///< selection metric at best_epoch (higher is better)
  int64_t bad_epochs = 0;     ///< epochs since the last improvement
  double wall_seconds = 0;    ///< training time so far
  torch::Tensor rng_state;    ///< LibTorch's default CPU generator
};

/// The bytes of a model file (for writing several files as one step with
/// util/file_io.h's write_files_atomic).
std::string checkpoint_bytes(nn::SequenceClassifier& model, torch::optim::Optimizer* optimizer, const ModelBundle& b,
                             const TrainingState* state);

/// Writes `model` with `bundle` atomically to `path`. Throws
/// std::invalid_argument when the bundle does not describe the model (its
/// config, labels and input size imply other parameter shapes), since such a
/// file could not be loaded; a failed write is an error naming the file.
void save_checkpoint(const std::string& path, nn::SequenceClassifier& model,
                     torch::optim::Optimizer* optimizer, const ModelBundle& bundle,
                     const TrainingState* state);

struct LoadedModel {
  nn::SequenceClassifier model{nullptr};
  ModelBundle bundle;
  bool has_state = false;
  TrainingState state;
};

/// The model file that `model_or_run` names: a run directory's best.pt, or
/// the file itself. Throws data::DataError when a run directory has none yet
/// (its training has not finished an epoch: how to resume it) or is no run.
/// \code
///   auto loaded = crnn::train::load_model(crnn::train::model_file("runs/clstm"));  // runs/clstm/best.pt
/// \endcode
std::string model_file(const std::string& model_or_run);

/// Rebuilds the model from the file's own config and loads its weights.
/// Throws std::runtime_error naming the file if it is missing or not a crnn model.
LoadedModel load_model(const std::string& path);

/// Restores the optimizer state of a checkpoint into `optimizer` (built over
/// the loaded model's parameters).
void load_optimizer(const std::string& path, torch::optim::Optimizer& optimizer);

}  // namespace crnn::train

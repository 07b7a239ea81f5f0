#pragma once
/// \file config.h
/// The run configuration (TOML): data, model and training sections.
///
/// A config names a model preset or lists its front-end layers explicitly;
/// every key can be overridden from the command line (`--set train.lr=0.001`,
/// `--set model.front_end.*.source=hidden`). Unknown keys and invalid values
/// are errors naming the key. `to_toml()` writes the fully resolved config,
/// which replays the same run when read back. Every key is declared once, with
/// its type, check and doc, in config_keys.cpp; the defaults are the member
/// initializers below.
///
/// \code
///   auto cfg = crnn::train::RunConfig::from_file("configs/ravdess-emotion8-clstm.toml",
///                                               {"train.max_epochs=5"});
///   std::cout << cfg.to_toml();
///   auto model_opts = cfg.model_options(/*num_classes=*/8, /*input_size=*/26);
/// \endcode

#include <stdexcept>
#include <string>
#include <vector>

#include "crnn/nn/sequence_classifier.h"

namespace crnn::train {

/// A config problem: the message names the file (or "--set") and the key.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& what, bool unknown_key = false)
      : std::runtime_error(what), unknown_key_(unknown_key) {}
  /// The problem is a key this build does not declare: in a file that crnn
  /// wrote (a model file), most likely a newer crnn's, not damage.
  bool unknown_key() const noexcept { return unknown_key_; }

 private:
  bool unknown_key_;
};

struct DataConfig {
  std::string manifest;      ///< CSV manifest (docs/manifest.md)
  std::string features;      ///< HDF5 feature file made by `crnn features`
  std::string task;          ///< label column to classify
  std::string split_column = "split";  ///< train / valid / test per row
  int64_t folds = 0;         ///< > 0: speaker-group cross-validation instead of split_column
  int64_t fold = 0;          ///< which fold is the test fold (0 .. folds−1)
  /// When the split has no validation speakers: carve this many training
  /// speakers per class (class-balanced by speakers) as the validation set.
  int64_t valid_speakers_per_class = 2;
  /// A speaker-level label column (e.g. "sex") that balances the carved
  /// validation speakers when the task is not speaker-level; "" = the first
  /// speaker-level column whose name contains "gender" (docs/splits.md).
  std::string stratify_by;
  uint64_t split_seed = 0;   ///< seed of carving and fold assignment
  /// Feature standardization: "speaker" (SPEC §3: every speaker, test
  /// speakers included, with the mean and std of all its own frames) or
  /// "global" (every utterance with the training set's mean and std; for
  /// corpora with few utterances per speaker, where speaker statistics remove
  /// the speaker traits the task is about — see docs/training.md).
  std::string normalization = "speaker";
  /// Training batches per length bucket (docs/batching.md): 1 = batches of
  /// neighbouring lengths in an order shuffled over the epoch; 8 = the order
  /// before this key existed (eight batches of one bucket in a row).
  int64_t batches_per_bucket = 1;
};

struct ModelConfig {
  std::string preset;        ///< "" = explicit; else a SequenceClassifierOptions preset
  std::vector<nn::FrontEndLayerOptions> front_end;
  int64_t recurrent_size = 256;
  bool bidirectional = false;
  bool peepholes = true;
  int64_t dense_size = 400;
  int64_t average_last = 4;
};

struct TrainConfig {
  double lr = 0.002;
  /// Adam's usual β1, β2. The paper's 0.1 / 0.001 are decay rates (1 − β).
  double beta1 = 0.9, beta2 = 0.999;
  int64_t batch_size = 32;
  int64_t max_epochs = 100;
  int64_t patience = 12;
  /// Early stopping may end a run only after this many epochs (0 = from the
  /// first, as SPEC §3). For small corpora whose epochs are a few dozen
  /// updates: a run can sit at chance for longer than `patience` epochs before
  /// it starts to learn (docs/training.md, "Slow start").
  int64_t min_epochs = 0;
  std::string selection_metric = "ua_recall";  ///< ua_recall | wa | loss
  uint64_t seed = 1;
  int64_t threads = 0;  ///< 0 = all cores
  /// > 0: rescale the gradient to at most this global L2 norm before each
  /// step. 0 (default) = off, as in the paper, which mentions no clipping.
  double clip_norm = 0;
  /// Matrix products in "fp32", or "bf16" with fp32 accumulation, state,
  /// nonlinearities, loss, master weights and Adam (kernels/precision.h).
  std::string precision = "fp32";
};

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;

  /// Parses TOML text, applies `overrides` ("section.key=value"), validates.
  static RunConfig parse(const std::string& text, const std::vector<std::string>& overrides = {},
                         const std::string& source = "<config>");
  static RunConfig from_file(const std::string& path,
                             const std::vector<std::string>& overrides = {});
  /// The complete config for a preset (`crnn config dump PRESET [--set ...]`,
  /// Python's crnn.config), with `overrides` applied.
  static RunConfig for_preset(const std::string& preset, const std::vector<std::string>& overrides = {});

  /// The fully resolved config as TOML (explicit layers, every key).
  std::string to_toml() const;

  /// Throws ConfigError naming the key if a value is invalid — the checks
  /// parse() applies, for a config whose fields were set in code
  /// (train_run calls it before anything is written). `source` names the
  /// config in the message.
  void validate(const std::string& source = "<config set in code>") const;

  /// Settings that are valid one by one but do not do what they seem to
  /// together, in words ("train.min_epochs = 50 is more than train.max_epochs
  /// = 3: …"); training and `crnn train --check` print them as notes.
  std::vector<std::string> notes() const;

  /// The canonical text an experiment cell's identity hashes: like to_toml(),
  /// but keys added after the first cells were named (config_keys.h,
  /// `at_legacy`) appear only when they differ from the value every run had
  /// before they existed, so a new key never re-keys a finished run.
  std::string identity_toml() const;

  /// The lines of `other.to_toml()` ("[section] key = value") that this config
  /// does not have: what changed going from this config to `other`. Empty when
  /// both resolve to the same text.
  std::vector<std::string> changed_lines(const RunConfig& other) const;

  nn::SequenceClassifierOptions model_options(int64_t num_classes, int64_t input_size) const;
};

}  // namespace crnn::train

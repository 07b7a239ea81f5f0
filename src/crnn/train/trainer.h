#pragma once
/// \file trainer.h
/// The paper's training protocol end to end (SPEC §3): Adam, cross-entropy of
/// the averaged prediction, a class-balanced training set, per-speaker
/// normalization, validation after every epoch, the best model kept, early
/// stopping — with resumable checkpoints and the run directory layout of
/// docs/training.md.
///
/// \code
///   auto cfg = crnn::train::RunConfig::from_file("configs/ravdess-emotion8-clstm.toml");
///   auto summary = crnn::train::train_run(cfg, "runs/clstm", {});
///   std::cout << summary.test_ua_recall << "\n";
/// \endcode

#include <atomic>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "crnn/data/batcher.h"
#include "crnn/kernels/precision.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/train/config.h"
#include "crnn/train/metrics.h"
#include "crnn/train/run_files.h"

namespace crnn::train {

/// Decides, after each validation, whether the model improved and when to
/// stop (Marian's "scheduler"): higher is better for ua_recall and wa, lower
/// for loss; stop after `patience` epochs without improvement, but not before
/// epoch `min_epochs`.
class Scheduler {
 public:
  Scheduler(std::string metric, int64_t patience, int64_t min_epochs = 0);
  /// Value of the selection metric as a "higher is better" score.
  double score(double ua_recall, double wa, double loss) const;
  /// Records an epoch's score; true if it is a new best.
  bool update(int64_t epoch, double score);
  bool should_stop() const { return bad_epochs_ >= patience_ && last_epoch >= min_epochs_; }

  int64_t best_epoch = 0;
  int64_t last_epoch = 0;  ///< the last epoch given to update()
  double best_score = -std::numeric_limits<double>::infinity();
  int64_t& bad_epochs() { return bad_epochs_; }

 private:
  std::string metric_;
  int64_t patience_;
  int64_t min_epochs_;
  int64_t bad_epochs_ = 0;
};

struct Evaluation {
  ConfusionMatrix confusion{2};
  double loss = 0;         ///< mean cross-entropy of the averaged prediction
  int64_t count = 0;
  std::vector<std::vector<float>> probabilities;  ///< per example, if requested
  std::vector<std::string> ids;
};

/// Runs the model over `examples` (no gradients, eval mode).
Evaluation evaluate(nn::SequenceClassifier& model, const std::vector<data::Example>& examples,
                    int64_t num_classes, int64_t batch_size = 32, bool keep_probabilities = false);

/// An evaluation as eval_<split>.json records it (run_files.h).
EvalResult eval_result(const Evaluation& e, const std::string& split, const std::string& task,
                       const std::vector<std::string>& labels);
/// A readable table: per-class recall and the confusion matrix.
std::string evaluation_table(const Evaluation& e, const std::string& split,
                             const std::vector<std::string>& labels);

struct TrainOptions {
  bool resume = false;
  /// The per-epoch batch progress on stderr (a bar on a terminal, periodic
  /// lines otherwise); false for a library caller that logs only through `log`.
  bool progress = true;
  /// Testing aid: exit abruptly (as if killed) after this many training
  /// batches in this process; 0 = never.
  int64_t crash_after_batches = 0;
  /// When set (e.g. by a SIGINT handler), training stops after the current
  /// batch with TrainInterrupted; last.pt keeps the last finished epoch, so the
  /// run resumes from there. Single-process runs only (one rank stopping alone
  /// would leave the others waiting).
  const std::atomic<bool>* stop = nullptr;
};

/// Training stopped on TrainOptions::stop; the run directory is resumable.
struct TrainInterrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs this thread's matrix products in `precision` ("fp32" | "bf16") while
/// the returned guard lives: the one check behind `train.precision` and the
/// CLI's `--precision`. bf16 where it is unavailable is a ConfigError
/// "<setting>: <reason>" (kernels/precision.h).
std::unique_ptr<kernels::PrecisionGuard> precision_guard(const std::string& precision, const std::string& setting);

/// data.manifest and data.features made absolute, each checked to exist: a
/// ConfigError names the key and, for a relative path, the working directory
/// it was taken from. train_run does this first.
void resolve_data_paths(RunConfig& config);

/// Trains into `run_dir` (created): config.toml, metrics.csv, best.pt,
/// last.pt, eval_valid.json, eval_test.json (if there is a test split) and
/// summary.json. With `resume`, continues from run_dir/last.pt using
/// run_dir/config.toml. Returns what summary.json records.
RunSummary train_run(const RunConfig& config, const std::string& run_dir,
                       const TrainOptions& options = {}, std::ostream& log = std::cerr);

/// What to train: a new run (its config file with `overrides` applied, into
/// `run_dir`) or an interrupted one (`resume`: run_dir's own config.toml with
/// `overrides`). `crnn train` and Python's crnn.train both start here.
struct RunStart {
  RunConfig config;
  std::string run_dir;
  bool resume = false;
};

/// A new run from `config_path` into `output`, or, when `resume_dir` is given,
/// the run in it. Throws ConfigError when neither or both are given, or when
/// `resume_dir` is not a run directory (no config.toml).
///
/// \code
///   auto start = crnn::train::start_run("my.toml", {"train.max_epochs=5"}, "runs/mine", "");
///   TrainOptions o;
///   o.resume = start.resume;
///   crnn::train::train_run(start.config, start.run_dir, o);
/// \endcode
RunStart start_run(const std::string& config_path, const std::vector<std::string>& overrides, const std::string& output,
                   const std::string& resume_dir);

}  // namespace crnn::train

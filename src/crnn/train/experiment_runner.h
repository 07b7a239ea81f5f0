#pragma once
/// \file experiment_runner.h
/// Training an experiment's runs (experiment.h): in this process one after the
/// other, or N at a time in worker processes; resumable (finished runs are
/// skipped, interrupted ones resumed), with estimates of the time left, a
/// wall-clock budget, and the results rewritten after every finished run.
///
/// \code
///   auto e = crnn::train::Experiment::from_file("configs/experiments/paper.toml");
///   crnn::train::run_experiment(e, "results/paper", {});  // serial, resumable
/// \endcode

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "crnn/train/experiment.h"
#include "crnn/train/trainer.h"

namespace crnn::train {

/// Finished and planned runs of the selected tables (a cell shared by several
/// tables counts once), and the training time the unfinished ones still need:
/// each is estimated by its cell's mean wall time so far, else by the mean of
/// finished runs of the same task and model preset, else of the same preset
/// on any task (the paper's presets are per corpus), less the epochs it has
/// already trained (metrics.csv); runs of a kind with no finished run are
/// counted in `unestimated`.
struct ExperimentProgress {
  int64_t planned = 0, finished = 0;
  double wall_seconds = 0;       ///< training wall time of the finished runs
  double remaining_seconds = 0;  ///< estimate for the estimated unfinished runs, one process
  int64_t estimated_by_cell = 0, estimated_by_model = 0, unestimated = 0;
  /// Per estimated unfinished (cell, seed): its remaining seconds, one process.
  std::map<std::pair<size_t, uint64_t>, double> remaining_by_run;
};
/// With `count_trained_epochs` false, unfinished runs are estimated whole: a
/// figure that depends on the finished runs alone, as results.md needs to
/// regenerate identically from the committed runs (an interrupted run's
/// metrics.csv is not committed).
ExperimentProgress experiment_progress(const Experiment& e, const ExperimentPlan& plan, const std::string& out_dir,
                                       bool count_trained_epochs = true);

/// Whether plan.jobs[job] is expected to finish within `seconds_left`: time is
/// left, and its estimated remaining time in `p` fits or it has none (nothing
/// to judge it by).
bool run_fits(const ExperimentProgress& p, const ExperimentPlan& plan, size_t job, double seconds_left);

/// For progress lines: ", ETA 3h 20m" for `processes` runs at a time (with
/// "; N runs not estimated" when some are not), or "" when none is estimated.
std::string eta_text(const ExperimentProgress& p, int64_t processes);

struct ExperimentOutcome {
  int64_t trained = 0, skipped = 0;
  int64_t not_started = 0;  ///< unfinished runs that would not fit in the time limit
  std::vector<std::string> failed;  ///< "label seed N: message"
  bool stopped = false;  ///< a worker failed with an error that repeats (usage): no more runs started
};

/// Trains plan.jobs[job] (resuming an interrupted run) with its cell's thread
/// count if it sets one, and `training`'s progress and stop flag. Throws what
/// `train_run` throws.
void train_job(const ExperimentPlan& plan, size_t job, const std::string& out_dir, std::ostream& log,
               const TrainOptions& training = {});

/// A `run_experiment_parallel` worker: plans `e` with `o` as its parent did
/// and trains job `job` of that plan alone (a ConfigError when the plan has
/// no such job).
void train_experiment_job(const Experiment& e, const ExperimentOptions& o, int64_t job, const std::string& out_dir,
                          std::ostream& log, const TrainOptions& training = {});

/// Rewrites the repeat.json / repeat.md of plan.cells[cell] from its finished
/// runs (removes them when it has none) and returns their summary.
RepeatSummary write_cell_repeat_files(const ExperimentPlan& plan, size_t cell, const std::string& out_dir);

/// After plan.jobs[job] finished: rewrites its cell's repeat files and the
/// experiment's results, and returns the run's figures. One process at a time
/// should call it (the files are written atomically, but two writers may each
/// miss the other's run).
RepeatRun record_job(const Experiment& e, const ExperimentPlan& plan, size_t job, const std::string& out_dir,
                     const ExperimentOptions& o);

/// Trains the unfinished jobs of this shard (unless !o.train), one after the
/// other in this process, refreshing the results after every run, then writes
/// them once more. `training` gives each run its progress and stop flag: when
/// the flag is set, the run in training stops after its current batch, no
/// other starts, the results are written and TrainInterrupted is thrown.
ExperimentOutcome run_experiment(const Experiment& e, const std::string& out_dir,
                                 const ExperimentOptions& o, std::ostream& log = std::cerr,
                                 const TrainOptions& training = {});

/// How `run_experiment_parallel` starts its workers.
struct ParallelRunOptions {
  int64_t processes = 2;           ///< runs at a time
  int64_t threads_per_process = 1; ///< for the log line; the worker arguments set it
  /// The arguments (argv[1..] of this executable) of a worker that trains
  /// plan.jobs[job] alone and exits 0 (e.g. `crnn experiment F -o D --run-job I`).
  std::function<std::vector<std::string>(size_t job)> worker_args;
  /// The worker program: "" for this executable (spawn_self), else its path
  /// (spawn_program; Python's sys.executable for crnn.experiment).
  std::string program;
  /// A worker's exit code meaning "an error every run would hit" (a bad
  /// config or data file): no further run is started.
  int stop_exit_code = 2;
};

/// Trains the unfinished jobs of this shard `p.processes` at a time, each in
/// its own process (util/subprocess.h) with its log in out_dir/logs/, handed
/// out as processes finish (runs differ in length by 50×, so a fixed split
/// would leave cores idle); honours o.time_limit_seconds as run_experiment
/// does. This process alone writes the results, after every finished run.
/// When `stop` is set (checked at least every 0.2 s), no other run starts,
/// the running workers get SIGINT (a worker that handles it stops after its
/// current batch, resumable), and once they have exited the results are
/// written and TrainInterrupted is thrown.
ExperimentOutcome run_experiment_parallel(const Experiment& e, const std::string& out_dir,
                                          const ExperimentOptions& o, const ParallelRunOptions& p,
                                          std::ostream& log = std::cerr, const std::atomic<bool>* stop = nullptr);

}  // namespace crnn::train

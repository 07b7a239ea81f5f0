#pragma once
/// \file experiment.h
/// A results table as an experiment: rows (models) × columns (tasks), each
/// cell a run config trained with several seeds — the form of the paper's
/// Tables I–IV. An experiment file (TOML, docs/experiments.md) lists tables;
/// `run_experiment` trains every (cell, seed) that has not finished yet and
/// writes results.md, results.json and one bar chart per table.
///
/// Cells are stored by content: a cell's directory is named after a hash of
/// its fully resolved config (seed and thread count left out), so two tables
/// that need the same runs — Table IV's "cell states, last" on emotion is
/// Table I's CLSTM — share them, and a changed config never reuses old runs.
///
/// \code
///   auto e = crnn::train::Experiment::from_file("configs/experiments/paper.toml");
///   crnn::train::ExperimentOptions o;
///   o.overrides = {"train.max_epochs=10"};           // applied to every cell
///   crnn::train::run_experiment(e, "results/paper", o);  // resumable
/// \endcode

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "crnn/train/config.h"
#include "crnn/train/repeat.h"

namespace crnn::train {

/// A row or a column of a table: a base config and/or `--set` overrides.
struct ExperimentAxis {
  std::string name;
  std::string config;             ///< run config path, relative to the experiment file
  std::vector<std::string> set;   ///< overrides, section.key=value
};

/// Extra rows holding the average of some rows' cell means (the paper's
/// "mean / max / last / hidden states / cell states" rows of Table IV).
struct ExperimentGroup {
  std::string name;
  std::vector<std::string> rows;
};

struct ExperimentTable {
  std::string id;      ///< file-name safe: the chart is <id>.svg
  std::string title;
  std::string note;    ///< printed under the title (markdown)
  int64_t seeds = 5;   ///< seeds 1..seeds per cell
  bool row_average = false;  ///< an "Average" column over the columns
  std::vector<ExperimentAxis> rows, columns;
  std::vector<ExperimentGroup> groups;
};

struct Experiment {
  std::string title;
  std::string source;  ///< the experiment file
  std::vector<ExperimentTable> tables;

  /// Parses an experiment file. Throws ConfigError naming the file and key.
  static Experiment from_file(const std::string& path);
  static Experiment parse(const std::string& text, const std::string& source);
};

struct ExperimentOptions {
  /// Overrides for every cell, applied after the column's and the row's.
  std::vector<std::string> overrides;
  /// Only these table ids (empty: all).
  std::vector<std::string> tables;
  /// Run only jobs with index % shards == shard: several processes can share
  /// one output directory without picking the same run.
  int64_t shard = 0, shards = 1;
  /// false: collect and write the results of finished runs, train nothing.
  bool train = true;
  /// The command line to print in results.md ("how to regenerate").
  std::string command;
  /// > 0: start no run expected to end more than this many seconds after
  /// run_experiment (or `crnn experiment`) starts, for a job with a wall-clock
  /// limit: a run starts only while time is left and its estimate
  /// (experiment_progress) fits in it or it has no estimate; later runs that
  /// fit are started in place of those that do not. Running runs are never
  /// stopped.
  double time_limit_seconds = 0;
};

/// One distinct run config and where its seeds live.
struct ExperimentCell {
  RunConfig config;
  std::string dir;      ///< relative to the output directory: runs/<task>-<model>-<hash>
  std::string label;    ///< "table · row · column" of its first use
  int64_t seeds = 0;    ///< the most seeds any table asks of it
};

/// One (cell, seed) training run.
struct ExperimentJob {
  size_t cell = 0;
  uint64_t seed = 1;
};

struct ExperimentPlan {
  std::vector<size_t> tables;                          ///< indices of the selected tables
  std::vector<ExperimentCell> cells;
  std::vector<std::vector<std::vector<size_t>>> grid;  ///< [table][row][column] → cell index
  std::vector<ExperimentJob> jobs;                     ///< seed-major: seed 1 of every cell first
};

/// Resolves every cell's config (errors name the table, row and column).
ExperimentPlan plan_experiment(const Experiment& e, const ExperimentOptions& o);

/// Summary of one cell's finished runs (seeds 1..seeds only).
RepeatSummary collect_cell(const std::string& out_dir, const ExperimentCell& cell, int64_t seeds);

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
ExperimentProgress experiment_progress(const Experiment& e, const ExperimentPlan& plan, const std::string& out_dir);

/// Whether plan.jobs[job] is expected to finish within `seconds_left`: time is
/// left, and its estimated remaining time in `p` fits or it has none (nothing
/// to judge it by).
bool run_fits(const ExperimentProgress& p, const ExperimentPlan& plan, size_t job, double seconds_left);

/// For progress lines: ", ETA 3h 20m" for `processes` runs at a time (with
/// "; N runs not estimated" when some are not), or "" when none is estimated.
std::string eta_text(const ExperimentProgress& p, int64_t processes);

/// Writes out_dir/results.md, results.json and <table id>.svg from the
/// finished runs; returns the markdown.
std::string write_experiment_results(const Experiment& e, const ExperimentPlan& plan,
                                     const std::string& out_dir, const ExperimentOptions& o);

struct ExperimentOutcome {
  int64_t trained = 0, skipped = 0;
  int64_t not_started = 0;  ///< unfinished runs that would not fit in the time limit
  std::vector<std::string> failed;  ///< "label seed N: message"
};

/// Indices into plan.jobs of this shard's jobs (index % shards == shard), in order.
std::vector<size_t> shard_jobs(const ExperimentPlan& plan, const ExperimentOptions& o);

/// Whether plan.jobs[job] has finished (its summary.json exists).
bool job_finished(const ExperimentPlan& plan, size_t job, const std::string& out_dir);

/// Trains plan.jobs[job] (resuming an interrupted run) with its cell's thread
/// count if it sets one. Throws what `train_run` throws.
void train_job(const ExperimentPlan& plan, size_t job, const std::string& out_dir, std::ostream& log);

/// After plan.jobs[job] finished: rewrites its cell's repeat files and the
/// experiment's results, and returns the run's figures. One process at a time
/// should call it (the files are written atomically, but two writers may each
/// miss the other's run).
RepeatRun record_job(const Experiment& e, const ExperimentPlan& plan, size_t job, const std::string& out_dir,
                     const ExperimentOptions& o);

/// Trains the unfinished jobs of this shard (unless !o.train), one after the
/// other in this process, refreshing the results after every run, then writes
/// them once more. (`crnn experiment --jobs N` runs N at a time, each in its
/// own process; see cmd_experiment.cpp.)
ExperimentOutcome run_experiment(const Experiment& e, const std::string& out_dir,
                                 const ExperimentOptions& o, std::ostream& log = std::cerr);

}  // namespace crnn::train

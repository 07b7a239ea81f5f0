#pragma once
/// \file experiment.h
/// A results table as an experiment: rows (models) × columns (tasks), each
/// cell a run config trained with several seeds — the form of the paper's
/// Tables I–IV. An experiment file (TOML, docs/experiments.md) lists tables;
/// this module parses it and plans its cells and runs; experiment_runner.h
/// trains them (resumable), experiment_results.h writes results.md,
/// results.json and one bar chart per table.
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
///   auto plan = crnn::train::plan_experiment(e, o);   // cells, seeds, jobs
/// \endcode

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "crnn/train/config.h"
#include "crnn/train/run_files.h"

namespace crnn::train {

/// A row or a column of a table: a base config and/or `--set` overrides.
struct ExperimentAxis {
  std::string name;
  std::string config;             ///< run config path, relative to the experiment file
  std::vector<std::string> set;   ///< overrides, section.key=value
  /// One round of `folds = K` (name "FOLD_OF, fold F"): the axis it came
  /// from, F and K; K = 0 otherwise.
  std::string fold_of;
  int64_t fold = 0, folds = 0;
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
  /// The command line to print in results.md ("how to regenerate"):
  /// experiment_command's.
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
  /// A cell of a table with the same settings as an earlier cell of that
  /// table (a mistyped set): both show the same runs.
  struct SameSettings {
    size_t table, row, column;     ///< the later cell
    size_t first_row, first_column;
  };
  std::vector<SameSettings> same_settings;
};

/// plan.same_settings as lines to print, one each, naming both cells of `e`.
std::vector<std::string> same_settings_warnings(const Experiment& e, const ExperimentPlan& plan);

/// Resolves every cell's config (errors name the table, row and column).
ExperimentPlan plan_experiment(const Experiment& e, const ExperimentOptions& o);

/// "crnn experiment FILE -o DIR --set K=V …": the command that trains and
/// writes the same results (ExperimentOptions::command), whichever front end ran.
std::string experiment_command(const std::string& file, const std::string& out_dir,
                               const std::vector<std::string>& overrides);

/// Summary of one cell's finished runs (seeds 1..seeds only).
RepeatSummary collect_cell(const std::string& out_dir, const ExperimentCell& cell, int64_t seeds);

/// Indices into plan.jobs of this shard's jobs (index % shards == shard), in order.
std::vector<size_t> shard_jobs(const ExperimentPlan& plan, const ExperimentOptions& o);

/// Whether plan.jobs[job] has finished (its summary.json exists).
bool job_finished(const ExperimentPlan& plan, size_t job, const std::string& out_dir);

/// For each finished run among `jobs` whose cell's manifest has changed since
/// it was trained: its job → why (manifest_changed_since); empty when none has.
/// Each manifest is read once.
std::map<size_t, std::string> stale_runs(const ExperimentPlan& plan, const std::vector<size_t>& jobs,
                                         const std::string& out_dir);

/// Throws ConfigError naming the first stale_runs and what to do: a finished
/// run of other data would otherwise be skipped and reported as this data's.
void refuse_stale_runs(const ExperimentPlan& plan, const std::vector<size_t>& jobs, const std::string& out_dir);

}  // namespace crnn::train

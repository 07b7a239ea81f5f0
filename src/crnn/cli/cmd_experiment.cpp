// `crnn experiment FILE -o DIR`: results tables (rows × columns × seeds),
// resumable; writes DIR/results.md, results.json and a chart per table.
#include <fmt/core.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>

#include "crnn/cli/command.h"
#include "crnn/train/experiment_runner.h"
#include "crnn/util/interrupt.h"
#include "crnn/util/progress.h"

namespace {

struct ExperimentCliOptions {
  std::string file, output, shard, time_limit;
  std::vector<std::string> overrides, tables;
  bool plan = false, results_only = false;
  int64_t jobs = 1;
  int64_t run_job = -1;  ///< (internal) train only this job of the plan, in this process
};

int run(const ExperimentCliOptions& c) {
  using namespace crnn;
  train::ExperimentOptions o;
  o.overrides = c.overrides;
  o.tables = c.tables;
  o.train = !c.results_only;
  o.command = train::experiment_command(c.file, c.output, c.overrides);
  if (!c.shard.empty()) {
    std::smatch m;
    if (!std::regex_match(c.shard, m, std::regex(R"((\d+)/(\d+))"))) {
      fmt::print(stderr, "crnn experiment: --shard {}: expected K/N, e.g. 0/2\n", c.shard);
      return cli::kExitUsage;
    }
    const std::string k = m[1], n = m[2];
    if (std::from_chars(k.data(), k.data() + k.size(), o.shard).ec != std::errc() ||
        std::from_chars(n.data(), n.data() + n.size(), o.shards).ec != std::errc()) {
      fmt::print(stderr, "crnn experiment: --shard {}: number out of range\n", c.shard);
      return cli::kExitUsage;
    }
  }
  if (!c.time_limit.empty()) {
    const auto limit = parse_duration(c.time_limit);
    if (!limit || *limit <= 0) {
      fmt::print(stderr, "crnn experiment: --time-limit {}: expected a positive duration, e.g. 2h30m, 90m or 3600 "
                 "(seconds)\n", c.time_limit);
      return cli::kExitUsage;
    }
    o.time_limit_seconds = *limit;
  }
  if (c.jobs < 1) {
    fmt::print(stderr, "crnn experiment: --jobs {}: must be >= 1\n", c.jobs);
    return cli::kExitUsage;
  }
  auto e = train::Experiment::from_file(c.file);
  // Ctrl-C stops the runs in training after their current batch (resumable);
  // with --jobs the workers get it too, from the terminal and again from this
  // process (for a SIGINT sent to it alone): a worker does not take the second
  // for "end now", while this process ends at a second Ctrl-C, its workers
  // with it (SIGTERM, spawn_self).
  // (--plan and --results-only train nothing: Ctrl-C ends them as usual.)
  std::optional<InterruptScope> interrupt;
  train::TrainOptions training;
  if (o.train && !c.plan) {
    interrupt.emplace(/*second_interrupt_ends=*/c.run_job < 0);
    training.stop = interrupt->flag();
  }
  if (c.run_job >= 0) {  // a --jobs worker
    train::train_experiment_job(e, o, c.run_job, c.output, std::cerr, training);
    return 0;
  }
  const auto plan = train::plan_experiment(e, o);
  for (const auto& w : train::same_settings_warnings(e, plan)) fmt::print(stderr, "crnn experiment: warning: {}\n", w);
  if (c.plan) {
    const auto& p = plan;
    const auto mine = train::shard_jobs(p, o);  // all runs without --shard
    int64_t done = 0;
    const auto stale_jobs = train::stale_runs(p, mine, c.output);
    for (size_t i : mine) {
      const auto& cell = p.cells[p.jobs[i].cell];
      const bool finished = train::job_finished(p, i, c.output);
      done += finished;
      const bool stale = stale_jobs.count(i) > 0;
      fmt::print("{:4d} {:8s} seed {} {} ({})\n", i, stale ? "stale" : finished ? "done" : "todo", p.jobs[i].seed,
                 cell.label, cell.dir);
    }
    fmt::print("{} runs{} in {} distinct cells: {} finished, {} to do\n", mine.size(),
               o.shards > 1 ? fmt::format(" of shard {}/{} ({} in all)", o.shard, o.shards, p.jobs.size()) : "",
               p.cells.size(), done, static_cast<int64_t>(mine.size()) - done);
    if (!stale_jobs.empty())
      fmt::print("{} finished run(s) marked stale were trained on another version of their manifest; training "
                 "refuses to go on until they are moved away or the manifest restored, e.g.\n  {}\n",
                 stale_jobs.size(), stale_jobs.begin()->second);
    return 0;
  }
  train::ExperimentOutcome r;
  if (c.jobs > 1 && o.train) {
    // --jobs N: N worker processes (`crnn experiment --run-job I`), cores / N threads each.
    train::ParallelRunOptions p;
    p.processes = c.jobs;
    p.threads_per_process = std::max<int64_t>(1, at::get_num_threads() / c.jobs);
    p.stop_exit_code = cli::kExitUsage;
    p.worker_args = [&c, threads = p.threads_per_process](size_t job) {
      std::vector<std::string> args = {"--threads", std::to_string(threads), "experiment", c.file, "-o", c.output,
                                       "--run-job", std::to_string(job)};
      for (const auto& s : c.overrides) args.insert(args.end(), {"--set", s});
      for (const auto& t : c.tables) args.insert(args.end(), {"--table", t});
      return args;
    };
    r = train::run_experiment_parallel(e, c.output, o, p, std::cerr, training.stop);
  } else {
    r = train::run_experiment(e, c.output, o, std::cerr, training);
  }
  if (o.train) {
    fmt::print("{}: trained {}, already finished {}, failed {}, not started {}; results in {}/results.md\n", c.file,
               r.trained, r.skipped, r.failed.size(), r.not_started, c.output);
  } else {  // --results-only looks at no run but through the tables
    const auto p = train::experiment_progress(e, plan, c.output, false);
    fmt::print("{}: results of {} finished run(s) of {} in {}/results.md\n", c.file, p.finished, p.planned, c.output);
    std::vector<size_t> every_job(plan.jobs.size());
    for (size_t i = 0; i < every_job.size(); ++i) every_job[i] = i;
    for (const auto& [job, why] : train::stale_runs(plan, every_job, c.output))  // results.md shows every shard's runs
      fmt::print(stderr, "crnn experiment: warning: {}\n", why);
  }
  for (auto& f : r.failed) fmt::print(stderr, "failed: {}\n", f);
  if (r.stopped) return cli::kExitUsage;
  return r.failed.empty() ? 0 : cli::kExitPartial;
}

crnn::cli::Registrar reg{
    "experiment",
    "Train a results table (models × tasks × seeds; resumable) and write results.md with charts",
    [](CLI::App& app) {
      auto o = std::make_shared<ExperimentCliOptions>();
      app.add_option("file", o->file, "Experiment file (TOML; see docs/experiments.md)")->required();
      app.add_option("-o,--output", o->output, "Output directory (runs, results.md, charts)")->required();
      app.add_option("--set", o->overrides, "Override a config key in every cell: section.key=value");
      app.add_option("--table", o->tables, "Only this table id (repeatable)");
      app.add_option("--shard", o->shard, "Run only shard K of N (K/N): parallel processes on one directory");
      app.add_option("-j,--jobs", o->jobs,
                     "Train N runs at a time, each in its own process with (--threads) / N threads")
          ->capture_default_str();
      app.add_option("--time-limit", o->time_limit,
                     "Start no run estimated to end after this much time (e.g. 2h30m, 90m, 3600): for a job with "
                     "a wall-clock limit; running runs are not stopped");
      app.add_option("--run-job", o->run_job, "(internal) train only this run of the plan")->group("");
      app.add_flag("--plan", o->plan, "List the runs and which are finished; train nothing");
      app.add_flag("--results-only", o->results_only, "Write results from the finished runs; train nothing");
      return [o] { return run(*o); };
    },
    55};

}  // namespace

// `crnn experiment FILE -o DIR`: results tables (rows × columns × seeds),
// resumable; writes DIR/results.md, results.json and a chart per table.
#include <fmt/core.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <regex>

#include "crnn/cli/command.h"
#include "crnn/train/experiment.h"
#include "crnn/util/progress.h"
#include "crnn/util/subprocess.h"

namespace {

struct ExperimentCliOptions {
  std::string file, output, shard, time_limit;
  std::vector<std::string> overrides, tables;
  bool plan = false, results_only = false;
  int64_t jobs = 1;
  int64_t run_job = -1;  ///< (internal) train only this job of the plan, in this process
};

namespace fs = std::filesystem;

/// --jobs N: N runs at a time, each in its own `crnn experiment --run-job I`
/// process with cores / N threads, handed out as processes finish (runs differ
/// in length by 50×, so a fixed split would leave cores idle). This process
/// alone writes the results, after every finished run.
int run_parallel(const ExperimentCliOptions& c, const crnn::train::Experiment& e,
                 const crnn::train::ExperimentOptions& o) {
  using namespace crnn;
  using clock = std::chrono::steady_clock;
  const auto plan = train::plan_experiment(e, o);
  const auto mine = train::shard_jobs(plan, o);
  std::deque<size_t> todo;
  for (size_t i : mine)
    if (!train::job_finished(plan, i, c.output)) todo.push_back(i);
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads() / c.jobs);
  const fs::path logs = fs::path(c.output) / "logs";
  fs::create_directories(logs);
  fmt::print(stderr, "experiment: {} runs in {} distinct cells{}; {} finished, {} to train in {} processes of {} thread(s); "
             "logs in {}/\n",
             plan.jobs.size(), plan.cells.size(),
             o.shards > 1 ? fmt::format(" ({} in shard {}/{})", mine.size(), o.shard, o.shards) : "",
             mine.size() - todo.size(), todo.size(), c.jobs, threads, logs.string());
  struct Running {
    size_t job;
    clock::time_point start;
    std::string log;
  };
  std::map<pid_t, Running> running;
  std::vector<std::string> failed;
  int64_t trained = 0;
  double run_seconds = 0;
  bool stop = false;
  const size_t to_train = todo.size();
  const auto start = clock::now();
  // The first run in plan order that is expected to end within the time limit
  // (any run without a limit); todo.end() when none is.
  auto next_run = [&]() {
    if (o.time_limit_seconds <= 0 || todo.empty()) return todo.begin();
    const double left = o.time_limit_seconds - std::chrono::duration<double>(clock::now() - start).count();
    const auto pg = train::experiment_progress(e, plan, c.output);
    return std::find_if(todo.begin(), todo.end(), [&](size_t i) { return train::run_fits(pg, plan, i, left); });
  };
  while (true) {
    while (!stop && static_cast<int64_t>(running.size()) < c.jobs) {
      const auto next = next_run();
      if (next == todo.end()) break;
      const size_t i = *next;
      todo.erase(next);
      const auto& job = plan.jobs[i];
      const auto& cell = plan.cells[job.cell];
      const std::string log =
          (logs / fmt::format("{}-seed_{}.log", fs::path(cell.dir).filename().string(), job.seed)).string();
      std::vector<std::string> args = {"--threads", std::to_string(threads), "experiment", c.file, "-o", c.output,
                                       "--run-job", std::to_string(i)};
      for (const auto& s : c.overrides) args.insert(args.end(), {"--set", s});
      for (const auto& t : c.tables) args.insert(args.end(), {"--table", t});
      const pid_t pid = spawn_self(args, log);
      running[pid] = {i, clock::now(), log};
      fmt::print(stderr, "experiment: started {}, seed {} (log {})\n", cell.label, job.seed, log);
    }
    if (running.empty()) break;
    const auto [pid, code] = wait_child();
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const Running r = it->second;
    running.erase(it);
    const auto& job = plan.jobs[r.job];
    const auto& cell = plan.cells[job.cell];
    const double seconds = std::chrono::duration<double>(clock::now() - r.start).count();
    if (code == 0 && train::job_finished(plan, r.job, c.output)) {
      ++trained;
      run_seconds += seconds;
      const auto run = train::record_job(e, plan, r.job, c.output, o);
      const size_t left = todo.size() + running.size();
      // Unsharded: estimated per run from finished runs of its cell or kind
      // (the pace of this invocation misleads: resumed runs finish early).
      std::string eta;
      if (left > 0 && o.shards == 1) {
        eta = train::eta_text(train::experiment_progress(e, plan, c.output), c.jobs);
      } else if (left > 0) {
        eta = ", ETA " + format_duration(run_seconds / trained * static_cast<double>(left) / static_cast<double>(c.jobs));
      }
      fmt::print(stderr, "experiment: finished {}, seed {}: test UA {:.2f}%, best epoch {} of {}, {}; {}/{} done{}\n",
                 cell.label, job.seed, 100 * run.test_ua_recall, run.best_epoch, run.epochs_run, format_duration(seconds),
                 trained + failed.size(), to_train, eta);
    } else {
      failed.push_back(fmt::format("{}, seed {}: exit code {}, see {}", cell.label, job.seed, code, r.log));
      fmt::print(stderr, "experiment: FAILED {}\n", failed.back());
      // A config, data or feature-file error is the same for every run: start no more.
      if (code == cli::kExitUsage && !stop) {
        stop = true;
        fmt::print(stderr, "experiment: not starting the remaining {} run(s) (a usage error repeats)\n", todo.size());
      }
    }
  }
  train::write_experiment_results(e, plan, c.output, o);
  if (!stop && !todo.empty())
    fmt::print(stderr, "experiment: not starting the remaining {} run(s): each is estimated to end after the time limit "
               "({})\n", todo.size(), c.time_limit);
  fmt::print("{}: trained {}, already finished {}, failed {}, not started {}; results in {}/results.md\n", c.file,
             trained, mine.size() - to_train, failed.size(), todo.size(), c.output);
  for (auto& f : failed) fmt::print(stderr, "failed: {}\n", f);
  if (stop) return cli::kExitUsage;
  return failed.empty() ? 0 : cli::kExitPartial;
}

int run(const ExperimentCliOptions& c) {
  using namespace crnn;
  train::ExperimentOptions o;
  o.overrides = c.overrides;
  o.tables = c.tables;
  o.train = !c.results_only;
  o.command = "crnn experiment " + c.file + " -o " + c.output;
  for (auto& s : c.overrides) o.command += " --set " + s;
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
  if (c.run_job >= 0) {  // a --jobs worker
    auto p = train::plan_experiment(e, o);
    if (c.run_job >= static_cast<int64_t>(p.jobs.size())) {
      fmt::print(stderr, "crnn experiment: --run-job {}: the plan has {} runs\n", c.run_job, p.jobs.size());
      return cli::kExitUsage;
    }
    train::train_job(p, static_cast<size_t>(c.run_job), c.output, std::cerr);
    return 0;
  }
  if (c.plan) {
    auto p = train::plan_experiment(e, o);
    int64_t done = 0;
    for (size_t i = 0; i < p.jobs.size(); ++i) {
      const auto& cell = p.cells[p.jobs[i].cell];
      const bool finished = std::filesystem::exists(std::filesystem::path(c.output) / cell.dir /
                                                    fmt::format("seed_{}", p.jobs[i].seed) / "summary.json");
      done += finished;
      fmt::print("{:4d} {:8s} seed {} {} ({})\n", i, finished ? "done" : "todo", p.jobs[i].seed, cell.label, cell.dir);
    }
    fmt::print("{} runs in {} distinct cells: {} finished, {} to do\n", p.jobs.size(), p.cells.size(), done,
               static_cast<int64_t>(p.jobs.size()) - done);
    return 0;
  }
  if (c.jobs > 1 && o.train) return run_parallel(c, e, o);
  auto r = train::run_experiment(e, c.output, o);
  fmt::print("{}: trained {}, already finished {}, failed {}, not started {}; results in {}/results.md\n", c.file,
             r.trained, r.skipped, r.failed.size(), r.not_started, c.output);
  for (auto& f : r.failed) fmt::print(stderr, "failed: {}\n", f);
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

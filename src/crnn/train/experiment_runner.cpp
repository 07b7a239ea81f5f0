#include "crnn/train/experiment_runner.h"

#include "crnn/util/file_lock.h"

#include <fmt/core.h>
#include <signal.h>
#include <sys/wait.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <set>

#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/train/experiment_results.h"
#include "crnn/train/repeat.h"
#include "crnn/train/run_files.h"
#include "crnn/util/file_io.h"
#include "crnn/util/progress.h"
#include "crnn/util/subprocess.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

namespace fs = std::filesystem;

namespace crnn::train {

/// The lock every writer of an output directory's shared files (repeat files,
/// results) holds while it reads what is finished and rewrites them.
static FileLock results_lock(const std::string& out_dir) {
  fs::create_directories(out_dir);
  return FileLock((fs::path(out_dir) / ".lock").string());
}

ExperimentProgress experiment_progress(const Experiment& e, const ExperimentPlan& plan, const std::string& out_dir,
                                       bool count_trained_epochs) {
  ExperimentProgress pg;
  std::set<std::pair<size_t, uint64_t>> planned_runs, finished_runs;
  std::map<size_t, std::pair<double, int64_t>> cell_wall;  // cell → (sum, count)
  for (size_t ti : plan.tables) {
    const auto& t = e.tables[ti];
    for (const auto& row : plan.grid[ti])
      for (size_t ci : row) {
        for (int64_t seed = 1; seed <= t.seeds; ++seed) planned_runs.insert({ci, static_cast<uint64_t>(seed)});
        for (auto& r : collect_cell(out_dir, plan.cells[ci], t.seeds).runs)
          if (finished_runs.insert({ci, r.seed}).second) {
            pg.wall_seconds += r.wall_seconds;
            cell_wall[ci].first += r.wall_seconds;
            ++cell_wall[ci].second;
          }
      }
  }
  pg.planned = static_cast<int64_t>(planned_runs.size());
  pg.finished = static_cast<int64_t>(finished_runs.size());
  // Runs of one kind (task and model preset, e.g. Table IV's variants of a
  // Table II model) take similar time; a cell's own runs are the better guide.
  auto kind = [&](size_t ci) {
    const auto& c = plan.cells[ci].config;
    return std::make_pair(c.data.task, c.model.preset);
  };
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> kind_wall;
  std::map<std::string, std::pair<double, int64_t>> preset_wall;  // last resort: same model, another task
  for (const auto& [ci, sum] : cell_wall) {
    for (auto* k : {&kind_wall[kind(ci)], &preset_wall[kind(ci).second]}) {
      k->first += sum.first;
      k->second += sum.second;
    }
  }
  for (const auto& [ci, seed] : planned_runs) {
    if (finished_runs.count({ci, seed})) continue;
    double estimate = 0;
    if (auto it = cell_wall.find(ci); it != cell_wall.end()) {
      estimate = it->second.first / static_cast<double>(it->second.second);
      ++pg.estimated_by_cell;
    } else if (auto kt = kind_wall.find(kind(ci)); kt != kind_wall.end()) {
      estimate = kt->second.first / static_cast<double>(kt->second.second);
      ++pg.estimated_by_model;
    } else if (auto pt = preset_wall.find(kind(ci).second); pt != preset_wall.end() && !kind(ci).second.empty()) {
      estimate = pt->second.first / static_cast<double>(pt->second.second);
      ++pg.estimated_by_model;
    } else {
      ++pg.unestimated;
      continue;
    }
    // An interrupted run resumes: its epochs so far need not be trained again.
    const fs::path metrics = fs::path(out_dir) / plan.cells[ci].dir / fmt::format("seed_{}", seed) / "metrics.csv";
    double done = 0;
    if (count_trained_epochs && fs::exists(metrics)) {
      try {
        for (const auto& m : read_metrics_csv(metrics.string()))
          if (std::isfinite(m.epoch_seconds)) done += m.epoch_seconds;
      } catch (const RunFileError&) {
        done = 0;  // unreadable: estimate the whole run
      }
    }
    pg.remaining_seconds += std::max(0.0, estimate - done);
    pg.remaining_by_run[{ci, seed}] = std::max(0.0, estimate - done);
  }
  return pg;
}

bool run_fits(const ExperimentProgress& p, const ExperimentPlan& plan, size_t job, double seconds_left) {
  if (!(seconds_left > 0)) return false;  // time is up: not even a run without an estimate
  const auto& j = plan.jobs.at(job);
  const auto it = p.remaining_by_run.find({j.cell, j.seed});
  return it == p.remaining_by_run.end() || it->second <= seconds_left;
}

std::string eta_text(const ExperimentProgress& p, int64_t processes) {
  if (p.estimated_by_cell + p.estimated_by_model == 0) return "";
  std::string text = ", ETA " + format_duration(p.remaining_seconds / static_cast<double>(std::max<int64_t>(1, processes)));
  if (p.unestimated > 0) text += fmt::format(" + {} run(s) not estimated", p.unestimated);
  return text;
}

void train_job(const ExperimentPlan& plan, size_t job, const std::string& out_dir, std::ostream& log,
               const TrainOptions& training) {
  const auto& j = plan.jobs.at(job);
  const auto& cell = plan.cells[j.cell];
  set_num_threads_from_config(cell.config.train.threads);
  run_seed(cell.config, (fs::path(out_dir) / cell.dir).string(), j.seed, log, "experiment", training);
}

void train_experiment_job(const Experiment& e, const ExperimentOptions& o, int64_t job, const std::string& out_dir,
                          std::ostream& log, const TrainOptions& training) {
  const auto plan = plan_experiment(e, o);
  if (job < 0 || job >= static_cast<int64_t>(plan.jobs.size()))
    throw ConfigError(fmt::format("{}: job {}: the plan has {} runs (0..{})", e.source, job, plan.jobs.size(),
                                  static_cast<int64_t>(plan.jobs.size()) - 1));
  train_job(plan, static_cast<size_t>(job), out_dir, log, training);
}

RepeatSummary write_cell_repeat_files(const ExperimentPlan& plan, size_t cell_index, const std::string& out_dir) {
  const auto& cell = plan.cells.at(cell_index);
  auto s = collect_cell(out_dir, cell, cell.seeds);
  s.task = cell.config.data.task;
  s.preset = cell.config.model.preset;
  const fs::path dir = fs::path(out_dir) / cell.dir;
  if (!s.runs.empty()) {
    write_repeat_files(dir.string(), s);
  } else {  // no finished run (any more): no summary of runs
    std::error_code ignore;
    for (const char* name : {"repeat.json", "repeat.md"}) fs::remove(dir / name, ignore);
  }
  return s;
}

RepeatRun record_job(const Experiment& e, const ExperimentPlan& plan, size_t job, const std::string& out_dir,
                     const ExperimentOptions& o) {
  const auto& j = plan.jobs.at(job);
  const auto& cell = plan.cells[j.cell];
  // Shards (and --jobs workers) share the cell's repeat files and the results:
  // reading what is finished and rewriting them is one step under the lock, so
  // a writer never replaces a newer summary with its older view.
  FileLock lock = results_lock(out_dir);
  const auto s = write_cell_repeat_files(plan, j.cell, out_dir);
  write_experiment_results(e, plan, out_dir, o);
  for (const auto& r : s.runs)
    if (r.seed == j.seed) return r;
  throw std::runtime_error(fmt::format("{}/{}/seed_{}: no finished run to record", out_dir, cell.dir, j.seed));
}

namespace {

// --results-only with other settings than the runs were trained with (a
// forgotten --set) finds none of them: it would replace the tables with dashes.
void refuse_results_of_nothing(const Experiment& e, const ExperimentPlan& plan, const ExperimentOptions& o,
                               const std::string& out_dir) {
  if (experiment_progress(e, plan, out_dir, false).finished > 0) return;
  // Cells of the tables not selected (--table) are not "other settings".
  ExperimentOptions every_table = o;
  every_table.tables.clear();
  std::set<std::string> planned;
  for (const auto& cell : plan.cells) planned.insert(fs::path(cell.dir).filename().string());
  try {
    for (const auto& cell : plan_experiment(e, every_table).cells) planned.insert(fs::path(cell.dir).filename().string());
  } catch (const ConfigError&) {
    // A table not selected that does not plan with these overrides: its cells are not known.
  }
  std::vector<std::string> others;
  std::error_code ec;
  const fs::path runs = fs::path(out_dir) / "runs";
  if (!fs::is_directory(runs, ec)) return;
  for (const auto& d : fs::directory_iterator(runs, ec)) {
    if (!d.is_directory(ec) || planned.count(d.path().filename().string())) continue;
    for (const auto& s : fs::directory_iterator(d.path(), ec))
      if (s.path().filename().string().rfind("seed_", 0) == 0 && run_finished(s.path().string())) {
        others.push_back(d.path().filename().string());
        break;
      }
  }
  if (others.empty()) return;
  std::sort(others.begin(), others.end());
  throw ConfigError(fmt::format(
      "{}: none of the {} planned runs has finished there, but {} cell(s) of other settings have ({}): were they "
      "trained with --set options not given now, or has the experiment file or a config changed since? The tables "
      "are left as they are",
      out_dir, plan.jobs.size(), others.size(), first_few(others, 3)));
}

}  // namespace

ExperimentOutcome run_experiment(const Experiment& e, const std::string& out_dir, const ExperimentOptions& o,
                                 std::ostream& log, const TrainOptions& training) {
  const ExperimentPlan plan = plan_experiment(e, o);
  ExperimentOutcome outcome;
  const std::vector<size_t> mine = shard_jobs(plan, o);
  if (!o.train) refuse_results_of_nothing(e, plan, o, out_dir);
  log << fmt::format("experiment: {} table(s), {} distinct cells, {} runs{}\n", plan.tables.size(), plan.cells.size(),
                     plan.jobs.size(),
                     o.shards > 1 ? fmt::format(" ({} in shard {}/{})", mine.size(), o.shard, o.shards) : "");
  if (o.train) {
    ensure_writable_directory(out_dir);  // not one failed run per job
    refuse_stale_runs(plan, mine, out_dir);
    const auto start = std::chrono::steady_clock::now();
    double trained_seconds = 0;
    for (size_t k = 0; k < mine.size(); ++k) {
      const auto& job = plan.jobs[mine[k]];
      const auto& cell = plan.cells[job.cell];
      if (job_finished(plan, mine[k], out_dir)) {
        ++outcome.skipped;
        continue;
      }
      if (o.time_limit_seconds > 0) {
        const double left =
            o.time_limit_seconds - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!run_fits(experiment_progress(e, plan, out_dir), plan, mine[k], left)) {
          ++outcome.not_started;
          log << fmt::format("experiment: not starting {}, seed {}: its estimate exceeds the {} left of the time limit\n",
                             cell.label, job.seed, format_duration(std::max(0.0, left)));
          continue;
        }
      }
      const size_t left = mine.size() - k;
      std::string eta;
      if (o.shards == 1) eta = eta_text(experiment_progress(e, plan, out_dir), 1);
      else if (outcome.trained > 0) eta = ", ETA " + format_duration(trained_seconds / outcome.trained * left) + " at this pace";
      log << fmt::format("experiment: run {}/{}: {}, seed {}{}\n", k + 1, mine.size(), cell.label, job.seed, eta);
      const auto t0 = std::chrono::steady_clock::now();
      try {
        if (training.stop && training.stop->load())
          throw TrainInterrupted(fmt::format("experiment: stopped before {}, seed {}", cell.label, job.seed));
        train_job(plan, mine[k], out_dir, log, training);
        ++outcome.trained;
        trained_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        record_job(e, plan, mine[k], out_dir, o);
      } catch (const TrainInterrupted&) {
        FileLock lock = results_lock(out_dir);  // the runs finished so far count
        write_experiment_results(e, plan, out_dir, o);
        throw;
      } catch (const ConfigError&) {
        throw;  // the same for every run: stop
      } catch (const data::DataError&) {
        throw;
      } catch (const data::FeatureStoreError&) {
        throw;
      } catch (const std::exception& err) {
        outcome.failed.push_back(fmt::format("{}, seed {}: {}", cell.label, job.seed, err.what()));
        log << "experiment: FAILED " << outcome.failed.back() << "\n";
      }
    }
  }
  {
    FileLock lock = results_lock(out_dir);
    if (!o.train)  // every result from the finished runs, the cells' repeat files too
      for (size_t c = 0; c < plan.cells.size(); ++c) write_cell_repeat_files(plan, c, out_dir);
    write_experiment_results(e, plan, out_dir, o);
  }
  return outcome;
}

ExperimentOutcome run_experiment_parallel(const Experiment& e, const std::string& out_dir, const ExperimentOptions& o,
                                          const ParallelRunOptions& p, std::ostream& log,
                                          const std::atomic<bool>* stop) {
  using clock = std::chrono::steady_clock;
  if (p.processes < 1) throw ConfigError(fmt::format("--jobs {}: must be >= 1", p.processes));
  if (!p.worker_args) throw std::invalid_argument("run_experiment_parallel: no worker_args");
  const auto plan = plan_experiment(e, o);
  const auto mine = shard_jobs(plan, o);
  ensure_writable_directory(out_dir);  // not one failed run per job
  refuse_stale_runs(plan, mine, out_dir);
  ExperimentOutcome outcome;
  std::deque<size_t> todo;
  for (size_t i : mine)
    if (!job_finished(plan, i, out_dir)) todo.push_back(i);
  outcome.skipped = static_cast<int64_t>(mine.size() - todo.size());
  const fs::path logs = fs::path(out_dir) / "logs";
  fs::create_directories(logs);
  log << fmt::format("experiment: {} runs in {} distinct cells{}; {} finished, {} to train in {} processes of {} "
                     "thread(s); logs in {}/\n",
                     plan.jobs.size(), plan.cells.size(),
                     o.shards > 1 ? fmt::format(" ({} in shard {}/{})", mine.size(), o.shard, o.shards) : "",
                     outcome.skipped, todo.size(), p.processes, p.threads_per_process, logs.string());
  struct Running {
    size_t job;
    clock::time_point start;
    std::string log;
  };
  std::map<pid_t, Running> running;
  // An error in the loop below (a results file that cannot be written) must
  // not leave workers training unseen: a host process (Python) lives on, so
  // their parent-death signal would not come.
  struct StopWorkersOnError {
    std::map<pid_t, Running>& running;
    int exceptions = std::uncaught_exceptions();
    ~StopWorkersOnError() {
      if (std::uncaught_exceptions() <= exceptions) return;
      for (const auto& r : running) ::kill(r.first, SIGTERM);
      for (const auto& r : running) ::waitpid(r.first, nullptr, 0);
    }
  } stop_workers_on_error{running};
  double run_seconds = 0;
  const size_t to_train = todo.size();
  const auto start = clock::now();
  // The first run in plan order that is expected to end within the time limit
  // (any run without a limit); todo.end() when none is.
  auto next_run = [&]() {
    if (o.time_limit_seconds <= 0 || todo.empty()) return todo.begin();
    const double left = o.time_limit_seconds - std::chrono::duration<double>(clock::now() - start).count();
    const auto pg = experiment_progress(e, plan, out_dir);
    return std::find_if(todo.begin(), todo.end(), [&](size_t i) { return run_fits(pg, plan, i, left); });
  };
  bool interrupted = false;
  // Once `stop` is set: start nothing more, and the workers stop after their
  // current batch (SIGINT, for a stop that reached this process alone).
  const auto interrupt_on_stop = [&] {
    if (interrupted || !stop || !stop->load()) return;
    interrupted = true;
    log << fmt::format("experiment: interrupted: stopping the {} running run(s) after their current batch\n",
                       running.size());
    for (const auto& r : running) ::kill(r.first, SIGINT);
  };
  while (true) {
    interrupt_on_stop();
    while (!interrupted && !outcome.stopped && static_cast<int64_t>(running.size()) < p.processes) {
      const auto next = next_run();
      if (next == todo.end()) break;
      const size_t i = *next;
      todo.erase(next);
      const auto& job = plan.jobs[i];
      const auto& cell = plan.cells[job.cell];
      const std::string job_log =
          (logs / fmt::format("{}-seed_{}.log", fs::path(cell.dir).filename().string(), job.seed)).string();
      const pid_t pid = p.program.empty() ? spawn_self(p.worker_args(i), job_log)
                                          : spawn_program(p.program, p.worker_args(i), job_log);
      running[pid] = {i, clock::now(), job_log};
      log << fmt::format("experiment: started {}, seed {} (log {})\n", cell.label, job.seed, job_log);
    }
    if (running.empty()) break;
    std::vector<pid_t> children;
    for (const auto& r : running) children.push_back(r.first);
    const auto [pid, code] = stop ? wait_child_for(0.2, children) : wait_child();
    if (pid == 0) continue;
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const Running r = it->second;
    running.erase(it);
    // A Ctrl-C at a terminal reaches the workers as well as this process: a
    // worker that stopped on it may end before the check above saw the flag.
    interrupt_on_stop();
    const auto& job = plan.jobs[r.job];
    const auto& cell = plan.cells[job.cell];
    const double seconds = std::chrono::duration<double>(clock::now() - r.start).count();
    if (code == 0 && job_finished(plan, r.job, out_dir)) {
      ++outcome.trained;
      run_seconds += seconds;
      const auto run = record_job(e, plan, r.job, out_dir, o);
      const size_t left = todo.size() + running.size();
      // Unsharded: estimated per run from finished runs of its cell or kind
      // (the pace of this invocation misleads: resumed runs finish early).
      std::string eta;
      if (left > 0 && o.shards == 1) {
        eta = eta_text(experiment_progress(e, plan, out_dir), p.processes);
      } else if (left > 0) {
        eta = ", ETA " + format_duration(run_seconds / static_cast<double>(outcome.trained) *
                                         static_cast<double>(left) / static_cast<double>(p.processes));
      }
      log << fmt::format("experiment: finished {}, seed {}: test UA {:.2f}%, best epoch {} of {}, {}; {}/{} done{}\n",
                         cell.label, job.seed, 100 * run.test_ua_recall, run.best_epoch, run.epochs_run,
                         format_duration(seconds), outcome.trained + static_cast<int64_t>(outcome.failed.size()),
                         to_train, eta);
    } else if (interrupted) {
      log << fmt::format("experiment: stopped {}, seed {} (resumable; log {})\n", cell.label, job.seed, r.log);
    } else {
      outcome.failed.push_back(fmt::format("{}, seed {}: exit code {}, see {}", cell.label, job.seed, code, r.log));
      log << "experiment: FAILED " << outcome.failed.back() << "\n";
      // A config, data or feature-file error is the same for every run: start no more.
      if (code == p.stop_exit_code && !outcome.stopped) {
        outcome.stopped = true;
        log << fmt::format("experiment: not starting the remaining {} run(s) (a usage error repeats)\n", todo.size());
      }
    }
  }
  {
    FileLock lock = results_lock(out_dir);
    write_experiment_results(e, plan, out_dir, o);
  }
  if (interrupted)
    throw TrainInterrupted(fmt::format("experiment: stopped with {} run(s) finished in this call; the others resume "
                                       "from their last finished epoch when the experiment runs again",
                                       outcome.trained));
  outcome.not_started = static_cast<int64_t>(todo.size());
  if (!outcome.stopped && !todo.empty())
    log << fmt::format("experiment: not starting the remaining {} run(s): each is estimated to end after the time "
                       "limit ({})\n",
                       todo.size(), format_duration(o.time_limit_seconds));
  return outcome;
}

}  // namespace crnn::train

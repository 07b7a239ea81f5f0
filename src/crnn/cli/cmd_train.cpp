// `crnn train CONFIG.toml [--set key=value]... -o RUNDIR` and `crnn train --resume RUNDIR`.
#include <fmt/core.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "crnn/cli/command.h"
#include "crnn/train/config.h"
#include "crnn/nn/options.h"
#include "crnn/train/distributed.h"
#include "crnn/train/run_data.h"
#include "crnn/train/trainer.h"
#include "crnn/util/interrupt.h"
#include "crnn/util/subprocess.h"
#include "crnn/util/threads.h"

namespace {

struct TrainCliOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string output;
  std::string resume;
  int64_t crash_after_batches = 0;
  std::string impl = "fused";
  int64_t nproc = 1;
  bool check = false;
};

/// `--nproc N`: this process is rank 0 of N on 127.0.0.1, the others are this
/// executable started with the same arguments and RANK = 1..N−1 (their output
/// in RUNDIR/rank<R>.log). A failed rank ends the others.
crnn::train::RunSummary train_local_ranks(const TrainCliOptions& o, const crnn::train::RunConfig& cfg,
                                          const std::string& run_dir, const crnn::train::TrainOptions& to) {
  using namespace crnn::train;
  if (std::getenv("WORLD_SIZE"))
    throw ConfigError("--nproc: WORLD_SIZE is already set (started by torchrun or srun?); use one or the other");
  const std::string n = std::to_string(o.nproc);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(free_local_port()).c_str(), 1);
  setenv("WORLD_SIZE", n.c_str(), 1);
  std::filesystem::create_directories(run_dir);
  std::vector<std::string> args{"--threads", std::to_string(at::get_num_threads()), "train"};
  if (!o.resume.empty()) args.insert(args.end(), {"--resume", o.resume});
  else args.insert(args.end(), {o.config, "-o", o.output});
  for (const auto& s : o.overrides) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), {"--impl", o.impl});
  std::vector<pid_t> others;
  for (int64_t r = 1; r < o.nproc; ++r) {
    setenv("RANK", std::to_string(r).c_str(), 1);
    setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
    others.push_back(crnn::spawn_self(args, (std::filesystem::path(run_dir) / fmt::format("rank{}.log", r)).string()));
  }
  setenv("RANK", "0", 1);
  setenv("LOCAL_RANK", "0", 1);
  RunSummary s;
  try {
    s = train_run(cfg, run_dir, to);
  } catch (...) {
    // The other ranks stop on their own when rank 0 refused the run or a
    // check failed (each with the reason in its log): give them a moment to
    // say so before they are stopped.
    std::vector<pid_t> running = others;
    for (int wait_ms = 0; !running.empty() && wait_ms < 3000; wait_ms += 50) {
      running.erase(std::remove_if(running.begin(), running.end(),
                                   [](pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == pid; }),
                    running.end());
      if (!running.empty()) usleep(50 * 1000);
    }
    for (pid_t pid : running) kill(pid, SIGTERM);
    for (pid_t pid : running) waitpid(pid, nullptr, 0);
    throw;
  }
  for (size_t i = 0; i < others.size(); ++i) {
    int status = 0;
    waitpid(others[i], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error(fmt::format("rank {} failed (see {}/rank{}.log)", i + 1, run_dir, i + 1));
  }
  return s;
}

int run_train(const TrainCliOptions& o) {
  using namespace crnn::train;
  crnn::nn::set_default_implementation(crnn::nn::parse_implementation(o.impl));
  if (o.check) {
    // The data as training would load it (split, sizes, warnings), without a run directory.
    if (o.config.empty() || !o.resume.empty() || !o.output.empty() || o.nproc > 1)
      throw ConfigError("--check: give only the config to check (and its --set overrides), not -o, --resume or --nproc");
    auto cfg = RunConfig::from_file(o.config, o.overrides);
    for (const auto& note : cfg.notes()) fmt::print("train: note: {}\n", note);
    resolve_data_paths(cfg);
    const auto precision = precision_guard(cfg.train.precision, "train.precision = \"" + cfg.train.precision + "\"");
    const auto d = load_run_data(cfg.data, std::cout);
    fmt::print("{}: the data loads as training would load it ({} classes; train {}, valid {}, test {} utterances); "
               "nothing was trained\n",
               o.config, d.labels.size(), d.train.size(), d.valid.size(), d.test.size());
    return 0;
  }
  TrainOptions to;
  to.crash_after_batches = o.crash_after_batches;
  auto start = start_run(o.config, o.overrides, o.output, o.resume);  // checks what is missing or contradictory
  to.resume = start.resume;
  const RunConfig& cfg = start.config;
  const std::string& run_dir = start.run_dir;
  crnn::set_num_threads_from_config(cfg.train.threads);
  // Ctrl-C stops one process after its current batch, resumable; several
  // ranks cannot stop alone (the others would wait), so they end as before.
  std::optional<crnn::InterruptScope> interrupt;
  if (o.nproc == 1 && !std::getenv("WORLD_SIZE")) {
    interrupt.emplace(/*second_interrupt_ends=*/true);
    to.stop = interrupt->flag();
  }
  RunSummary s;
  try {
    s = o.nproc > 1 ? train_local_ranks(o, cfg, run_dir, to) : train_run(cfg, run_dir, to);
  } catch (const TrainInterrupted& e) {
    throw TrainInterrupted(fmt::format("{} (crnn train --resume {})", e.what(), run_dir));
  }
  if (const char* rank = std::getenv("RANK"); rank && std::string(rank) != "0" && std::getenv("WORLD_SIZE")) {
    fmt::print("{}: rank {} done (rank 0 writes the run directory)\n", run_dir, rank);
    return 0;
  }
  fmt::print("{}: best epoch {} of {}, val UA recall {:.2f}%", run_dir, s.best_epoch, s.epochs_run,
             100 * s.val_ua_recall);
  if (!std::isnan(s.test_ua_recall))
    fmt::print(", test UA recall {:.2f}%, test WA {:.2f}%", 100 * s.test_ua_recall, 100 * s.test_wa);
  fmt::print(" ({:.0f} s)\n", s.wall_seconds);
  return 0;
}

crnn::cli::Registrar reg{
    "train",
    "Train a sequence classifier with the paper's protocol into a run directory",
    [](CLI::App& app) {
      auto o = std::make_shared<TrainCliOptions>();
      app.add_option("config", o->config, "Run configuration (TOML); see `crnn config dump`");
      app.add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
      app.add_option("-o,--output", o->output, "Run directory to create");
      app.add_option("--resume", o->resume, "Continue the run in this directory from its last.pt");
      app.add_flag("--check", o->check,
                   "Load the data as training would (manifest, features, split, data warnings), print it and stop: "
                   "no run directory, nothing trained");
      app.add_option("--impl", o->impl,
                     "CRNN/LSTM implementation: fused (fast, default) or composed (the reference)")
          ->check(CLI::IsMember({"fused", "composed"}));
      app.add_option("--nproc", o->nproc,
                     "Train with N local processes (data parallel, torch.distributed Gloo; --threads is per "
                     "process). Across machines, start one `crnn train` per rank with MASTER_ADDR, MASTER_PORT, "
                     "RANK and WORLD_SIZE set (torchrun, srun); see docs/training.md")
          ->check(crnn::cli::IntRange(1, 256));
      app.add_option("--crash-after-batches", o->crash_after_batches,
                     "Testing aid: exit abruptly after N batches")
          ->group("");
      return [o] { return run_train(*o); };
    },
    30};

}  // namespace

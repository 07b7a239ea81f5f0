// `crnn train CONFIG.toml [--set key=value]... -o RUNDIR` and `crnn train --resume RUNDIR`.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/train/config.h"
#include "crnn/nn/options.h"
#include "crnn/train/trainer.h"
#include "crnn/util/threads.h"

namespace {

struct TrainCliOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string output;
  std::string resume;
  int64_t crash_after_batches = 0;
  std::string impl = "fused";
};

int run_train(const TrainCliOptions& o) {
  using namespace crnn::train;
  crnn::nn::set_default_implementation(crnn::nn::parse_implementation(o.impl));
  TrainOptions to;
  to.crash_after_batches = o.crash_after_batches;
  std::string run_dir = o.output;
  RunConfig cfg;
  if (!o.resume.empty()) {
    run_dir = o.resume;
    const auto path = std::filesystem::path(run_dir) / "config.toml";
    if (!std::filesystem::exists(path))
      throw ConfigError(fmt::format("{}: not a run directory (no config.toml); start a run with -o", run_dir));
    cfg = RunConfig::from_file(path.string(), o.overrides);
    to.resume = true;
  } else {
    if (o.config.empty()) throw ConfigError("give a CONFIG.toml (or --resume RUNDIR)");
    if (run_dir.empty()) throw ConfigError("give the run directory with -o RUNDIR");
    cfg = RunConfig::from_file(o.config, o.overrides);
  }
  if (cfg.train.threads > 0) crnn::set_num_threads(static_cast<int>(cfg.train.threads));
  auto s = train_run(cfg, run_dir, to);
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
      app.add_option("--impl", o->impl,
                     "CRNN/LSTM implementation: fused (fast, default) or composed (the reference)")
          ->check(CLI::IsMember({"fused", "composed"}));
      app.add_option("--crash-after-batches", o->crash_after_batches,
                     "Testing aid: exit abruptly after N batches")
          ->group("");
      return [o] { return run_train(*o); };
    },
    30};

}  // namespace

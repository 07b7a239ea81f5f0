#include "crnn/train/repeat.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crnn/data/error.h"
#include "crnn/data/manifest.h"
#include "crnn/train/run_data.h"
#include "crnn/train/trainer.h"
#include "crnn/util/json_text.h"

namespace fs = std::filesystem;

namespace crnn::train {

namespace {

/// Throws ConfigError if the finished run in `run` was trained with another
/// config than `expected`. The thread count and the data file paths (moved
/// data) may differ; every other key must match.
void check_finished_run_config(const fs::path& run, const RunConfig& expected) {
  const fs::path file = run / "config.toml";
  if (!fs::exists(file)) return;  // runs written before config.toml existed
  RunConfig saved = RunConfig::from_file(file.string());
  RunConfig comparable = expected;
  comparable.train.threads = saved.train.threads;
  comparable.data.manifest = saved.data.manifest;
  comparable.data.features = saved.data.features;
  const auto changed = saved.changed_lines(comparable);
  if (!changed.empty())
    throw ConfigError(fmt::format("{}: finished with another config than this one (changed:\n  {}\n); use another "
                                  "output directory or remove it",
                                  run.string(), fmt::join(changed, "\n  ")));
}

}  // namespace

RepeatRun run_seed(const RunConfig& config, const std::string& dir_in, uint64_t seed, std::ostream& log,
                   const std::string& label, const TrainOptions& train) {
  const fs::path dir(dir_in);
  const std::string rel = fmt::format("seed_{}", seed);
  const fs::path run = dir / rel;
  RunConfig c = config;
  c.train.seed = seed;
  if (run_finished(run.string())) {
    // A finished run counts only if it is this config's: an earlier `repeat` into
    // the same directory with other settings would otherwise be reported as this one.
    check_finished_run_config(run, c);
    if (const auto why = manifest_changed_since(run.string(), c.data); !why.empty())
      throw ConfigError(why + ". Move the run away (or use another output directory) to train it again on the "
                              "manifest as it is, or restore the manifest");
    log << fmt::format("{}: {} already finished, skipping\n", label, run.string());
  } else {
    if (fs::exists(run / "summary.json"))
      log << fmt::format("{}: {}/summary.json is damaged; the run resumes and writes it again\n", label,
                         run.string());
    fs::create_directories(dir);
    TrainOptions to = train;
    to.resume = fs::exists(run / "last.pt");
    log << fmt::format("{}: seed {} in {}{}\n", label, seed, run.string(), to.resume ? ", resuming" : "");
    try {
      train_run(c, run.string(), to, log);
    } catch (const TrainInterrupted& e) {
      // Not `crnn train --resume`: the same repeat (or experiment) goes on from here.
      throw TrainInterrupted(fmt::format("{} (the same repeat or experiment, run again, skips the finished runs "
                                         "and resumes this one)",
                                         e.what()));
    }
  }
  return repeat_run(read_run_summary((run / "summary.json").string()), seed, rel);
}

RepeatSummary repeat_runs(const RunConfig& config, const std::string& dir_in, int64_t seeds, uint64_t first_seed,
                          std::ostream& log, const TrainOptions& train) {
  if (seeds < 1) throw ConfigError("--seeds must be >= 1");
  // Seeds are stored in TOML and JSON as signed 64-bit integers.
  constexpr uint64_t max_seed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (first_seed > max_seed || static_cast<uint64_t>(seeds - 1) > max_seed - first_seed)
    throw ConfigError(fmt::format("--first-seed {} with --seeds {}: the last seed must be <= {}", first_seed,
                                  seeds, max_seed));
  const fs::path dir(dir_in);
  // Every seed's finished run checked before any trains: a stale seed 5 found
  // after hours of seeds 1..4 would waste them.
  std::map<std::string, std::string> current;  // the manifest read once for all seeds
  for (int64_t i = 0; i < seeds; ++i) {
    const fs::path run = dir / fmt::format("seed_{}", first_seed + i);
    if (const auto why = manifest_changed_since(run.string(), config.data, &current); !why.empty())
      throw ConfigError(why + ". Move the run away (or use another output directory) to train it again on the "
                              "manifest as it is, or restore the manifest");
  }
  fs::create_directories(dir);
  RepeatSummary s;
  for (int64_t i = 0; i < seeds; ++i)
    s.runs.push_back(
        run_seed(config, dir_in, first_seed + i, log, fmt::format("repeat: run {}/{}", i + 1, seeds), train));
  s.task = config.data.task;
  s.preset = config.model.preset;
  summarize(s);
  write_repeat_files(dir_in, s);
  return s;
}

RepeatSummary read_repeat(const std::string& dir_in) {
  const fs::path dir(dir_in);
  RepeatSummary s;
  std::vector<std::pair<uint64_t, fs::path>> found;
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    uint64_t seed = 0;
    const char* digits = name.data() + std::min<size_t>(5, name.size());
    const bool seed_dir = name.rfind("seed_", 0) == 0 && name.size() > 5 &&
                          std::from_chars(digits, name.data() + name.size(), seed).ptr == name.data() + name.size();
    if (e.is_directory() && seed_dir && run_finished(e.path().string())) found.emplace_back(seed, e.path());
  }
  std::sort(found.begin(), found.end());
  for (auto& [seed, p] : found)
    s.runs.push_back(repeat_run(read_run_summary((p / "summary.json").string()), seed, p.filename().string()));
  summarize(s);
  return s;
}

}  // namespace crnn::train

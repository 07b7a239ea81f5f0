#include "crnn/train/repeat.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crnn/data/error.h"
#include "crnn/data/manifest.h"
#include "crnn/train/trainer.h"
#include "crnn/util/json_text.h"

namespace fs = std::filesystem;

namespace crnn::train {

std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {std::nan(""), std::nan("")};
  double m = 0;
  for (double x : v) m += x;
  m /= v.size();
  if (v.size() < 2) return {m, 0.0};
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / (v.size() - 1))};
}

namespace {

double number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

/// A run's summary.json; throws DataError when it is not a JSON object with epochs_run.
nlohmann::json read_summary(const fs::path& run_dir) {
  const auto path = (run_dir / "summary.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data::read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw data::DataError(path + ": malformed JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("epochs_run") || !j["epochs_run"].is_number())
    throw data::DataError(path + ": not a run summary (no epochs_run)");
  return j;
}

RepeatRun read_run(const fs::path& run_dir, uint64_t seed, const std::string& rel) {
  const auto j = read_summary(run_dir);
  RepeatRun r;
  r.seed = seed;
  r.dir = rel;
  r.test_ua_recall = number(j, "test_ua_recall");
  r.test_wa = number(j, "test_wa");
  r.val_ua_recall = number(j, "val_ua_recall");
  r.best_epoch = static_cast<int64_t>(number(j, "best_epoch"));
  r.epochs_run = static_cast<int64_t>(number(j, "epochs_run"));
  r.wall_seconds = number(j, "wall_seconds");
  return r;
}

}  // namespace

void summarize(RepeatSummary& s) {
  std::vector<double> ua, wa, val;
  for (auto& r : s.runs) {
    ua.push_back(r.test_ua_recall);
    wa.push_back(r.test_wa);
    val.push_back(r.val_ua_recall);
  }
  std::tie(s.test_ua_recall_mean, s.test_ua_recall_std) = mean_std(ua);
  std::tie(s.test_wa_mean, s.test_wa_std) = mean_std(wa);
  std::tie(s.val_ua_recall_mean, s.val_ua_recall_std) = mean_std(val);
}

void write_repeat_files(const RepeatSummary& s, const std::string& dir_in, const RunConfig& config) {
  const fs::path dir(dir_in);
  nlohmann::json j;
  j["runs"] = nlohmann::json::array();
  for (auto& r : s.runs)
    j["runs"].push_back({{"seed", r.seed}, {"dir", r.dir}, {"test_ua_recall", r.test_ua_recall},
                         {"test_wa", r.test_wa}, {"val_ua_recall", r.val_ua_recall},
                         {"best_epoch", r.best_epoch}, {"epochs_run", r.epochs_run},
                         {"wall_seconds", r.wall_seconds}});
  j["test_ua_recall_mean"] = s.test_ua_recall_mean;
  j["test_ua_recall_std"] = s.test_ua_recall_std;
  j["test_wa_mean"] = s.test_wa_mean;
  j["test_wa_std"] = s.test_wa_std;
  j["val_ua_recall_mean"] = s.val_ua_recall_mean;
  j["val_ua_recall_std"] = s.val_ua_recall_std;
  j["task"] = config.data.task;
  j["preset"] = config.model.preset;
  data::write_text_file_atomic((dir / "repeat.json").string(), crnn::json_text(j, 2) + "\n");

  std::string md = fmt::format("# {} runs — task {}{}\n\n", s.runs.size(), config.data.task,
                               config.model.preset.empty() ? "" : ", model " + config.model.preset);
  md += "| seed | test UA recall (%) | test WA (%) | val UA recall (%) | best epoch | epochs | wall (s) |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|\n";
  for (auto& r : s.runs)
    md += fmt::format("| {} | {:.2f} | {:.2f} | {:.2f} | {} | {} | {:.0f} |\n", r.seed, 100 * r.test_ua_recall,
                      100 * r.test_wa, 100 * r.val_ua_recall, r.best_epoch, r.epochs_run, r.wall_seconds);
  md += fmt::format("| **mean ± std** | **{:.2f} ± {:.2f}** | **{:.2f} ± {:.2f}** | {:.2f} ± {:.2f} | | | |\n",
                    100 * s.test_ua_recall_mean, 100 * s.test_ua_recall_std, 100 * s.test_wa_mean,
                    100 * s.test_wa_std, 100 * s.val_ua_recall_mean, 100 * s.val_ua_recall_std);
  data::write_text_file_atomic((dir / "repeat.md").string(), md);
}

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

bool run_finished(const std::string& run_dir) {
  if (!fs::exists(fs::path(run_dir) / "summary.json")) return false;
  try {
    read_summary(run_dir);
    return true;
  } catch (const data::DataError&) {
    return false;
  }
}

RepeatRun run_seed(const RunConfig& config, const std::string& dir_in, uint64_t seed, std::ostream& log,
                   const std::string& label) {
  const fs::path dir(dir_in);
  const std::string rel = fmt::format("seed_{}", seed);
  const fs::path run = dir / rel;
  RunConfig c = config;
  c.train.seed = seed;
  if (run_finished(run.string())) {
    // A finished run counts only if it is this config's: an earlier `repeat` into
    // the same directory with other settings would otherwise be reported as this one.
    check_finished_run_config(run, c);
    log << fmt::format("{}: {} already finished, skipping\n", label, run.string());
  } else {
    if (fs::exists(run / "summary.json"))
      log << fmt::format("{}: {}/summary.json is damaged; the run resumes and writes it again\n", label,
                         run.string());
    fs::create_directories(dir);
    TrainOptions to;
    to.resume = fs::exists(run / "last.pt");
    log << fmt::format("{}: seed {} in {}{}\n", label, seed, run.string(), to.resume ? ", resuming" : "");
    train_run(c, run.string(), to, log);
  }
  return read_run(run, seed, rel);
}

RepeatSummary repeat_runs(const RunConfig& config, const std::string& dir_in, int64_t seeds, uint64_t first_seed,
                          std::ostream& log) {
  if (seeds < 1) throw ConfigError("--seeds must be >= 1");
  // Seeds are stored in TOML and JSON as signed 64-bit integers.
  constexpr uint64_t max_seed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (first_seed > max_seed || static_cast<uint64_t>(seeds - 1) > max_seed - first_seed)
    throw ConfigError(fmt::format("--first-seed {} with --seeds {}: the last seed must be <= {}", first_seed,
                                  seeds, max_seed));
  const fs::path dir(dir_in);
  fs::create_directories(dir);
  RepeatSummary s;
  for (int64_t i = 0; i < seeds; ++i)
    s.runs.push_back(run_seed(config, dir_in, first_seed + i, log, fmt::format("repeat: run {}/{}", i + 1, seeds)));
  summarize(s);
  write_repeat_files(s, dir_in, config);
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
  for (auto& [seed, p] : found) s.runs.push_back(read_run(p, seed, p.filename().string()));
  summarize(s);
  return s;
}

}  // namespace crnn::train

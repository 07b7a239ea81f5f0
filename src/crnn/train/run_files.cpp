#include "crnn/train/run_files.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "crnn/util/json_text.h"
#include "crnn/util/text.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace crnn::train {

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  double sum = 0;
  for (double x : v)
    if (std::isfinite(x)) sum += x, ++r.n;
  if (r.n == 0) return r;
  r.mean = sum / static_cast<double>(r.n);
  if (r.n < 2) return r;
  double ss = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - r.mean) * (x - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(r.n - 1));
  return r;
}

namespace {

/// The file's text; RunFileError naming it when it is missing or unreadable.
std::string read_run_file(const std::string& path) {
  if (!fs::exists(path)) throw RunFileError(path + ": no such file");
  try {
    return read_text_file(path);
  } catch (const DataError& e) {
    throw RunFileError(e.what());
  }
}

/// Writes atomically (util/file_io.h); RunFileError naming the file on failure.
void write_run_file(const std::string& path, const std::string& text) {
  try {
    write_text_file_atomic(path, text);
  } catch (const DataError& e) {
    throw RunFileError(e.what());
  }
}

json load_json(const std::string& path) {
  const std::string text = read_run_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw RunFileError(fmt::format("{}: malformed JSON: {}", path, e.what()));
  }
  if (!j.is_object()) throw RunFileError(path + ": expected a JSON object");
  return j;
}

void write_json(const std::string& path, const json& j) { write_run_file(path, crnn::json_text(j, 2) + "\n"); }

/// Typed access to one key of a JSON object, with errors naming file and key.
class JsonFields {
 public:
  JsonFields(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  /// A number; absent or null is NaN unless `required`.
  double number(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return kMissing;
    if (!v->is_number()) fail(key, "a number");
    return v->get<double>();
  }
  int64_t integer(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return 0;
    if (!v->is_number() || v->get<double>() != std::floor(v->get<double>())) fail(key, "an integer");
    return v->get<int64_t>();
  }
  std::string string(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return "";
    if (!v->is_string()) fail(key, "a string");
    return v->get<std::string>();
  }
  std::vector<std::string> strings(const char* key, bool required = false) const {
    const json* v = find(key, required);
    std::vector<std::string> out;
    if (!v || v->is_null()) return out;
    if (!v->is_array()) fail(key, "an array of strings");
    for (const auto& e : *v) {
      if (!e.is_string()) fail(key, "an array of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  std::vector<double> numbers(const char* key) const {
    const json* v = find(key, false);
    std::vector<double> out;
    if (!v || v->is_null()) return out;
    if (!v->is_array()) fail(key, "an array of numbers");
    for (const auto& e : *v) {
      if (e.is_null()) out.push_back(kMissing);  // a class absent from the split has no recall
      else if (e.is_number()) out.push_back(e.get<double>());
      else fail(key, "an array of numbers");
    }
    return out;
  }
  std::vector<std::vector<int64_t>> count_matrix(const char* key, size_t n) const {
    const json* v = find(key, true);
    const std::string what = fmt::format("a {0}×{0} array of counts (one row per label)", n);
    if (!v->is_array() || v->size() != n) fail(key, what);
    std::vector<std::vector<int64_t>> out;
    for (const auto& row : *v) {
      if (!row.is_array() || row.size() != n) fail(key, what);
      auto& r = out.emplace_back();
      for (const auto& e : row) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0) fail(key, what);
        r.push_back(e.get<int64_t>());
      }
    }
    return out;
  }
  const json& raw(const char* key) const { return *find(key, true); }

  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    throw RunFileError(fmt::format("{}: \"{}\" must be {}", path_, key, expected));
  }

 private:
  const json* find(const char* key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) throw RunFileError(fmt::format("{}: missing \"{}\"", path_, key));
      return nullptr;
    }
    return &*it;
  }
  const json& j_;
  std::string path_;
};

// --- metrics.csv ---------------------------------------------------------------

const char* const kMetricColumns[] = {"epoch",  "train_loss",    "val_loss",    "val_ua_recall",
                                      "val_wa", "epoch_seconds", "frames_per_s"};

// Cells and lines: line ends included (files edited on Windows).
std::string trim_cell(const std::string& s) { return crnn::trim(s, " \t\r\n"); }

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) cells.push_back(trim_cell(cell));
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

/// A CSV cell as a number: empty (or "nan") is NaN, anything else must parse whole.
bool parse_cell(const std::string& cell, double& out) {
  if (cell.empty()) {
    out = kMissing;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  out = std::strtod(cell.c_str(), &end);
  return end == cell.c_str() + cell.size() && errno != ERANGE;
}

/// What is wrong with one parsed row (v in kMetricColumns order), or "".
std::string row_problem(const std::vector<std::string>& cells, const size_t* col, const double* v,
                        const std::vector<EpochMetrics>& before) {
  // (1e9 bounds the epoch so that the cast is defined: 1e300 is no epoch.)
  if (!std::isfinite(v[0]) || v[0] != std::floor(v[0]) || std::abs(v[0]) > 1e9)
    return fmt::format("epoch \"{}\" is not a whole number of magnitude at most 10^9", cells[col[0]]);
  // Values `crnn train` cannot write: a damaged or hand-edited file, which
  // would otherwise be drawn as a chart from -560 % to -440 %. (An empty cell
  // is a value not measured.)
  if (v[0] < 1 || (!before.empty() && v[0] <= static_cast<double>(before.back().epoch)))
    return fmt::format("epoch {} does not follow epoch {}", cells[col[0]],
                       before.empty() ? std::string("0 (epochs start at 1)") : std::to_string(before.back().epoch));
  for (size_t k : {size_t{3}, size_t{4}})  // val_ua_recall, val_wa: fractions
    if (!cells[col[k]].empty() && !(v[k] >= 0.0 && v[k] <= 1.0))
      return fmt::format("{} {} is not a fraction in [0, 1]", kMetricColumns[k], cells[col[k]]);
  for (size_t k : {size_t{1}, size_t{2}, size_t{5}, size_t{6}})  // losses, seconds, frames/s
    if (!cells[col[k]].empty() && !(v[k] >= 0.0))
      return fmt::format("{} {} is negative or not a number", kMetricColumns[k], cells[col[k]]);
  return "";
}

}  // namespace

const std::string& metrics_csv_header() {
  static const std::string header = [] {
    std::string h;
    for (const char* name : kMetricColumns) h += (h.empty() ? "" : ",") + std::string(name);
    return h + "\n";
  }();
  return header;
}

std::vector<EpochMetrics> read_metrics_csv(const std::string& path) {
  const std::string text = read_run_file(path);
  std::vector<std::string> lines;
  {
    std::stringstream ss(text);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
  }
  const bool last_complete = text.empty() || text.back() == '\n';
  if (lines.empty()) throw RunFileError(path + ":1: empty file (expected a header line)");
  std::string head = lines[0];
  if (head.rfind("\xEF\xBB\xBF", 0) == 0) head.erase(0, 3);
  const auto header = split_commas(trim_cell(head));
  size_t col[std::size(kMetricColumns)];
  for (size_t k = 0; k < std::size(kMetricColumns); ++k) {
    auto it = std::find(header.begin(), header.end(), kMetricColumns[k]);
    if (it == header.end())
      throw RunFileError(fmt::format("{}:1: header has no \"{}\" column (expected {})", path, kMetricColumns[k],
                                     trim_cell(metrics_csv_header())));
    col[k] = static_cast<size_t>(it - header.begin());
  }

  std::vector<EpochMetrics> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string line = trim_cell(lines[i]);
    if (line.empty()) continue;
    // A last line without its line end is cut short (a file truncated, or a
    // writer other than crnn's atomic one still appending): never a row, even
    // when its cells parse ("…,1234" cut to "…,12" would).
    if (i + 1 == lines.size() && !last_complete) break;
    const auto cells = split_commas(line);
    double v[std::size(kMetricColumns)];
    std::string problem;
    if (cells.size() != header.size()) {
      problem = fmt::format("expected {} cells, found {}", header.size(), cells.size());
    } else {
      for (size_t k = 0; k < std::size(kMetricColumns) && problem.empty(); ++k)
        if (!parse_cell(cells[col[k]], v[k]))
          problem = fmt::format("{} \"{}\" is not a number", kMetricColumns[k], cells[col[k]]);
      if (problem.empty()) problem = row_problem(cells, col, v, rows);
    }
    if (!problem.empty()) {
      throw RunFileError(fmt::format("{}:{}: {}", path, i + 1, problem));
    }
    rows.push_back({static_cast<int64_t>(v[0]), v[1], v[2], v[3], v[4], v[5], v[6]});
  }
  return rows;
}

void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& rows) {
  std::string text = metrics_csv_header();
  for (const auto& m : rows)
    text += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", m.epoch, m.train_loss, m.val_loss,
                        m.val_ua_recall, m.val_wa, m.epoch_seconds, m.frames_per_s);
  write_run_file(path, text);
}

// --- summary.json ------------------------------------------------------------------

RunSummary read_run_summary(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  RunSummary s;
  s.epochs_run = f.integer("epochs_run", /*required=*/true);
  s.best_epoch = f.integer("best_epoch");
  s.val_ua_recall = f.number("val_ua_recall");
  s.val_wa = f.number("val_wa");
  s.test_ua_recall = f.number("test_ua_recall");
  s.test_wa = f.number("test_wa");
  s.wall_seconds = f.number("wall_seconds");
  s.task = f.string("task");
  s.labels = f.strings("labels");
  s.train_utterances = f.integer("train_utterances");
  s.valid_utterances = f.integer("valid_utterances");
  s.test_utterances = f.integer("test_utterances");
  s.train_speakers = f.integer("train_speakers");
  s.valid_speakers = f.integer("valid_speakers");
  s.test_speakers = f.integer("test_speakers");
  s.seed = static_cast<uint64_t>(f.integer("seed"));
  s.split = f.string("split");
  s.feature_extractor = f.string("feature_extractor");
  s.manifest_crc32 = f.string("manifest_crc32");
  return s;
}

std::string run_summary_json_text(const RunSummary& s) {
  json j;
  j["best_epoch"] = s.best_epoch;
  j["epochs_run"] = s.epochs_run;
  j["val_ua_recall"] = s.val_ua_recall;
  j["val_wa"] = s.val_wa;
  j["test_ua_recall"] = number_or_null(s.test_ua_recall);
  j["test_wa"] = number_or_null(s.test_wa);
  j["wall_seconds"] = s.wall_seconds;
  j["task"] = s.task;
  j["labels"] = s.labels;
  j["train_utterances"] = s.train_utterances;
  j["valid_utterances"] = s.valid_utterances;
  j["test_utterances"] = s.test_utterances;
  j["train_speakers"] = s.train_speakers;
  j["valid_speakers"] = s.valid_speakers;
  j["test_speakers"] = s.test_speakers;
  j["seed"] = s.seed;
  if (!s.split.empty()) j["split"] = s.split;
  if (!s.feature_extractor.empty()) j["feature_extractor"] = s.feature_extractor;
  if (!s.manifest_crc32.empty()) j["manifest_crc32"] = s.manifest_crc32;
  return crnn::json_text(j, 2) + "\n";
}

void write_run_summary(const std::string& path, const RunSummary& s) { write_run_file(path, run_summary_json_text(s)); }

bool run_finished(const std::string& run_dir) {
  const auto path = (fs::path(run_dir) / "summary.json").string();
  if (!fs::exists(path)) return false;
  try {
    read_run_summary(path);
    return true;
  } catch (const RunFileError&) {
    return false;
  }
}

// --- eval_<split>.json ---------------------------------------------------------------

EvalResult read_eval_json(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  EvalResult e;
  e.split = f.string("split");
  e.task = f.string("task");
  e.labels = f.strings("labels", /*required=*/true);
  e.loss = f.number("loss");
  e.ua_recall = f.number("ua_recall");
  e.wa = f.number("wa");
  e.per_class_recall = f.numbers("per_class_recall");
  e.confusion = f.count_matrix("confusion", e.labels.size());
  e.count = f.integer("count");
  if (!j.contains("count"))
    for (const auto& r : e.confusion) e.count += std::accumulate(r.begin(), r.end(), int64_t{0});
  return e;
}

std::string eval_json_text(const EvalResult& e) {
  json j;
  j["split"] = e.split;
  j["task"] = e.task;
  j["labels"] = e.labels;
  j["count"] = e.count;
  j["loss"] = e.loss;
  j["ua_recall"] = e.ua_recall;
  j["wa"] = e.wa;
  json recalls = json::array();
  for (double r : e.per_class_recall) recalls.push_back(number_or_null(r));
  j["per_class_recall"] = recalls;
  j["confusion"] = e.confusion;
  return crnn::json_text(j, 2) + "\n";
}

void write_eval_json(const std::string& path, const EvalResult& e) { write_run_file(path, eval_json_text(e)); }

// --- repeat.json and repeat.md ---------------------------------------------------------

RepeatRun repeat_run(const RunSummary& s, uint64_t seed, const std::string& dir) {
  RepeatRun r;
  r.seed = seed;
  r.dir = dir;
  r.test_ua_recall = s.test_ua_recall;
  r.test_wa = s.test_wa;
  r.val_ua_recall = s.val_ua_recall;
  r.best_epoch = s.best_epoch;
  r.epochs_run = s.epochs_run;
  r.wall_seconds = s.wall_seconds;
  return r;
}

void summarize(RepeatSummary& s) {
  std::vector<double> ua, wa, val;
  for (const auto& r : s.runs) {
    ua.push_back(r.test_ua_recall);
    wa.push_back(r.test_wa);
    val.push_back(r.val_ua_recall);
  }
  s.test_ua_recall = mean_std(ua);
  s.test_wa = mean_std(wa);
  s.val_ua_recall = mean_std(val);
}

RepeatSummary read_repeat_json(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  RepeatSummary r;
  r.task = f.string("task");
  r.preset = f.string("preset");
  const json& runs = f.raw("runs");
  if (!runs.is_array()) f.fail("runs", "an array of objects");
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!runs[i].is_object()) f.fail("runs", "an array of objects");
    const JsonFields rf(runs[i], fmt::format("{}: runs[{}]", path, i));
    RepeatRun run;
    run.seed = static_cast<uint64_t>(rf.integer("seed"));
    run.dir = rf.string("dir");
    run.test_ua_recall = rf.number("test_ua_recall");
    run.test_wa = rf.number("test_wa");
    run.val_ua_recall = rf.number("val_ua_recall");
    run.best_epoch = rf.integer("best_epoch");
    run.epochs_run = rf.integer("epochs_run");
    run.wall_seconds = rf.number("wall_seconds");
    r.runs.push_back(run);
  }
  // The file's own figures are what `crnn repeat` reported; the counts follow the runs.
  summarize(r);
  r.test_ua_recall.mean = f.number("test_ua_recall_mean");
  r.test_ua_recall.std = f.number("test_ua_recall_std");
  r.test_wa.mean = f.number("test_wa_mean");
  r.test_wa.std = f.number("test_wa_std");
  r.val_ua_recall.mean = f.number("val_ua_recall_mean");
  r.val_ua_recall.std = f.number("val_ua_recall_std");
  return r;
}

namespace {

/// "41.25 ± 1.03" in percent; the mean alone for one run; "—" for none.
std::string pct_mean_std(const MeanStd& m) {
  if (!std::isfinite(m.mean)) return "—";
  return std::isfinite(m.std) ? fmt::format("{:.2f} ± {:.2f}", 100 * m.mean, 100 * m.std)
                              : fmt::format("{:.2f}", 100 * m.mean);
}

std::string pct2(double v) { return std::isfinite(v) ? fmt::format("{:.2f}", 100 * v) : "—"; }

}  // namespace

void write_repeat_files(const std::string& dir_in, const RepeatSummary& s) {
  const fs::path dir(dir_in);
  json j;
  j["runs"] = json::array();
  for (const auto& r : s.runs)
    j["runs"].push_back({{"seed", r.seed}, {"dir", r.dir}, {"test_ua_recall", number_or_null(r.test_ua_recall)},
                         {"test_wa", number_or_null(r.test_wa)}, {"val_ua_recall", number_or_null(r.val_ua_recall)},
                         {"best_epoch", r.best_epoch}, {"epochs_run", r.epochs_run},
                         {"wall_seconds", number_or_null(r.wall_seconds)}});
  j["test_ua_recall_mean"] = number_or_null(s.test_ua_recall.mean);
  j["test_ua_recall_std"] = number_or_null(s.test_ua_recall.std);
  j["test_wa_mean"] = number_or_null(s.test_wa.mean);
  j["test_wa_std"] = number_or_null(s.test_wa.std);
  j["val_ua_recall_mean"] = number_or_null(s.val_ua_recall.mean);
  j["val_ua_recall_std"] = number_or_null(s.val_ua_recall.std);
  j["task"] = s.task;
  j["preset"] = s.preset;
  write_json((dir / "repeat.json").string(), j);

  std::string md = fmt::format("# {} runs — task {}{}\n\n", s.runs.size(), s.task,
                               s.preset.empty() ? "" : ", model " + s.preset);
  md += "| seed | test UA recall (%) | test WA (%) | val UA recall (%) | best epoch | epochs | wall (s) |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : s.runs)
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {:.0f} |\n", r.seed, pct2(r.test_ua_recall), pct2(r.test_wa),
                      pct2(r.val_ua_recall), r.best_epoch, r.epochs_run, r.wall_seconds);
  md += fmt::format("| **mean ± std** | **{}** | **{}** | {} | | | |\n", pct_mean_std(s.test_ua_recall),
                    pct_mean_std(s.test_wa), pct_mean_std(s.val_ua_recall));
  write_run_file((dir / "repeat.md").string(), md);
}

}  // namespace crnn::train

#include "crnn/train/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <regex>
#include <set>

#include "crnn/train/charts.h"
#include "crnn/train/config.h"
#include "crnn/util/file_io.h"
#include "crnn/util/text.h"

namespace crnn::train {
namespace {
namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string esc(const std::string& s) { return crnn::xml_escape(s); }

}  // namespace

// ---------------------------------------------------------------------------
// Report

namespace {

/// Everything the report shows about one run, read before anything is written
/// so that a bad input file leaves no half-written report behind.
struct RunData {
  fs::path dir;
  std::vector<EpochMetrics> metrics;
  std::optional<RunSummary> summary;  // absent while `crnn train` is running
  std::vector<EvalResult> evals;
  /// What was trained, seed, threads and data paths left out ("" without a
  /// readable config.toml): runs with equal keys are seeds of one model.
  std::string model_key, model_name;
};

/// "seed_2" < "seed_10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      const auto za = na.find_first_not_of('0'), zb = nb.find_first_not_of('0');
      const std::string ta = za == std::string::npos ? "" : na.substr(za);
      const std::string tb = zb == std::string::npos ? "" : nb.substr(zb);
      if (ta.size() != tb.size()) return ta.size() < tb.size();
      if (ta != tb) return ta < tb;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

RunData load_run(const fs::path& dir) {
  RunData run;
  run.dir = dir;
  run.metrics = read_metrics_csv((dir / "metrics.csv").string());
  if (fs::exists(dir / "config.toml")) {
    try {
      RunConfig c = RunConfig::from_file((dir / "config.toml").string());
      run.model_name = (c.model.preset.empty() ? std::string("custom model") : c.model.preset) + ", task " + c.data.task;
      c.train.seed = 0;
      c.train.threads = 0;
      c.data.manifest.clear();
      c.data.features.clear();
      run.model_key = c.identity_toml();
    } catch (const std::exception&) {
      run.model_key.clear();  // unreadable: grouped with nothing
    }
  }
  if (fs::exists(dir / "summary.json")) run.summary = read_run_summary((dir / "summary.json").string());
  std::vector<fs::path> evals;
  static const std::regex kEval("eval_(.+)\\.json");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), kEval))
      evals.push_back(e.path());
  std::sort(evals.begin(), evals.end(), [](const fs::path& a, const fs::path& b) {
    return natural_less(a.filename().string(), b.filename().string());
  });
  for (const auto& p : evals) {
    EvalResult e = read_eval_json(p.string());
    if (e.split.empty()) {  // fall back to the split named by the file
      const std::string name = p.stem().string();
      e.split = name.substr(5);
    }
    run.evals.push_back(std::move(e));
  }
  return run;
}

/// The directory's own name, also for "." and "runs/x/".
std::string base_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

std::string pct(double v) { return crnn::percent(v, 1, "%"); }

std::string mean_std_pct(double mean, double sd) {
  if (!std::isfinite(mean)) return "—";
  return std::isfinite(sd) ? fmt::format("{:.1f}% ± {:.1f}", 100 * mean, 100 * sd) : pct(mean);
}

void write_text(const fs::path& path, const std::string& text, std::vector<std::string>& written) {
  try {
    write_text_file_atomic(path.string(), text);
  } catch (const DataError& e) {
    throw ReportError(e.what());
  }
  written.push_back(path.string());
}

/// `<a><img></a>` for an SVG at a path relative to index.html.
std::string figure(const std::string& rel, const std::string& alt) {
  return fmt::format("<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{1}\"></a>"
                     "<figcaption><a href=\"{0}\">{0}</a></figcaption></figure>\n",
                     esc(rel), esc(alt));
}

std::string table_row(const std::string& key, const std::string& value) {
  return fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", esc(key), esc(value));
}

/// Writes one run's SVGs into `out` (a folder that is `prefix` relative to
/// index.html) and returns its HTML section.
std::string render_run(const RunData& run, const std::string& heading, const std::string& anchor,
                       const fs::path& out, const std::string& prefix,
                       std::vector<std::string>& written) {
  fs::create_directories(out);
  std::string h = fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", esc(anchor), esc(heading));
  h += fmt::format("<p class=\"path\">{}</p>\n", esc(run.dir.string()));

  // Best epoch: the summary's choice; while training, the best so far.
  std::optional<int64_t> best;
  std::string best_label = "best epoch";
  if (run.summary && run.summary->best_epoch > 0) {
    best = run.summary->best_epoch;
  } else {
    double top = -INFINITY;
    for (const auto& m : run.metrics)
      if (std::isfinite(m.val_ua_recall) && m.val_ua_recall > top) top = m.val_ua_recall, best = m.epoch;
    best_label = "best so far";
  }

  h += "<table class=\"summary\">\n";
  if (run.summary) {
    const RunSummary& s = *run.summary;
    if (!s.task.empty()) h += table_row("task", s.task);
    h += table_row("epochs run", std::to_string(s.epochs_run));
    h += table_row("best epoch", s.best_epoch > 0 ? std::to_string(s.best_epoch) : "—");
    h += table_row("validation UA recall", pct(s.val_ua_recall));
    h += table_row("test UA recall", pct(s.test_ua_recall));
    h += table_row("test WA", pct(s.test_wa));
    if (std::isfinite(s.wall_seconds))
      h += table_row("wall time", s.wall_seconds < 60 ? fmt::format("{:.1f} s", s.wall_seconds)
                                                       : fmt::format("{:.1f} min", s.wall_seconds / 60));
    if (!s.labels.empty()) {
      std::string labels;
      for (const auto& l : s.labels) labels += (labels.empty() ? "" : ", ") + l;
      h += table_row(fmt::format("classes ({})", s.labels.size()), labels);
    }
  } else {
    h += table_row("summary", "no summary.json yet (training still running?)");
    h += table_row("epochs so far", std::to_string(run.metrics.size()));
    if (best) h += table_row("best epoch so far", std::to_string(*best));
  }
  for (const auto& e : run.evals)
    h += table_row(fmt::format("{} ({} examples)", e.split, e.count),
                   fmt::format("UA recall {}, WA {}", pct(e.ua_recall), pct(e.wa)));
  h += "</table>\n";

  if (run.metrics.empty()) {
    h += "<p class=\"empty\">no epochs yet</p>\n";
  } else {
    std::vector<double> epoch, tl, vl, ua, wa;
    for (const auto& m : run.metrics) {
      epoch.push_back(static_cast<double>(m.epoch));
      tl.push_back(m.train_loss);
      vl.push_back(m.val_loss);
      ua.push_back(100 * m.val_ua_recall);
      wa.push_back(100 * m.val_wa);
    }
    LineChart loss;
    loss.title = "Loss per epoch";
    loss.x_label = "epoch";
    loss.y_label = "cross-entropy";
    loss.integer_x = true;
    loss.series = {{"train loss", epoch, tl}, {"validation loss", epoch, vl}};
    if (best) loss.marker_x = static_cast<double>(*best), loss.marker_label = fmt::format("{} {}", best_label, *best);
    write_text(out / "loss.svg", line_chart_svg(loss), written);

    LineChart rec;
    rec.title = "Validation recall per epoch";
    rec.x_label = "epoch";
    rec.y_label = "%";
    rec.integer_x = true;
    rec.series = {{"UA recall", epoch, ua}, {"WA (accuracy)", epoch, wa}};
    if (best) rec.marker_x = static_cast<double>(*best), rec.marker_label = fmt::format("{} {}", best_label, *best);
    write_text(out / "recall.svg", line_chart_svg(rec), written);

    h += "<div class=\"figures\">\n" + figure(prefix + "loss.svg", heading + ": loss") +
         figure(prefix + "recall.svg", heading + ": validation recall") + "</div>\n";
  }

  if (!run.evals.empty()) {
    h += "<div class=\"figures\">\n";
    for (const auto& e : run.evals) {
      Heatmap map;
      map.title = fmt::format("{} — UA recall {}, WA {}", e.split, pct(e.ua_recall), pct(e.wa));
      map.labels = e.labels;
      map.counts = e.confusion;
      const std::string name = "confusion_" + crnn::file_safe_name(e.split) + ".svg";
      write_text(out / name, heatmap_svg(map), written);
      h += figure(prefix + name, heading + ": confusion on " + e.split);
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

const char* const kStyle = R"(
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.path { color: #666; font-family: monospace; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ddd; padding: .3em .8em; text-align: left; }
th { background: #f5f5f5; font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures figure { flex: 1 1 560px; max-width: 100%; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .8em; color: #666; }
.empty { font-style: italic; color: #a00; }
nav a { margin-right: 1em; }
)";

std::string page(const std::string& title, const std::string& body) {
  return fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<title>{0}</title>\n<style>{1}</style>\n</head>\n<body>\n<h1>{0}</h1>\n{2}"
                     "</body>\n</html>\n",
                     esc(title), kStyle, body);
}

}  // namespace

std::vector<std::string> write_report(const std::string& dir_arg, const std::string& out_arg,
                                      std::vector<std::string>* skipped) {
  const fs::path dir(dir_arg);
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw ReportError(dir_arg + ": no such directory");
  if (!fs::is_directory(dir, ec)) throw ReportError(dir_arg + ": not a directory");
  const fs::path out(out_arg);
  std::vector<std::string> written;

  if (fs::exists(dir / "metrics.csv")) {
    const RunData run = load_run(dir);
    fs::create_directories(out);
    const std::string name = base_name(dir);
    std::string title = "Training report: " + (name.empty() ? dir_arg : name);
    if (run.summary && !run.summary->task.empty()) title += " (" + run.summary->task + ")";
    const std::string body = render_run(run, "Run", "run", out, "", written);
    write_text(out / "index.html", page(title, body), written);
    return written;
  }

  // A `crnn repeat` directory: its runs are the subdirectories with metrics.csv.
  // A run directory without one (a config.toml, a seed_N name, or listed in
  // repeat.json) is skipped and said so, not silently left out.
  std::optional<RepeatSummary> repeat;
  if (fs::exists(dir / "repeat.json")) repeat = read_repeat_json((dir / "repeat.json").string());
  std::vector<std::string> names;
  std::set<std::string> missing;
  if (repeat)
    for (const auto& r : repeat->runs) missing.insert(fs::path(r.dir).lexically_normal().filename().string());
  static const std::regex kSeedDir("seed_[0-9]+");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (fs::exists(e.path() / "metrics.csv")) {
      names.push_back(name);
      missing.erase(name);
    } else if (fs::exists(e.path() / "config.toml") || std::regex_match(name, kSeedDir)) {
      missing.insert(name);
    }
  }
  if (names.empty()) {
    // An experiment's output: its report is results.md; each cell is a repeat directory.
    if (fs::exists(dir / "results.md") && fs::is_directory(dir / "runs"))
      throw ReportError(dir_arg + ": the output of `crnn experiment`, whose report is " + (dir / "results.md").string() +
                        " (with the charts beside it); `crnn report` takes one of its cells, " +
                        (dir / "runs" / "CELL").string() + ", or a run in it");
    throw ReportError(dir_arg +
                      ": neither metrics.csv nor run subdirectories with metrics.csv (expected "
                      "the output of `crnn train` or `crnn repeat`)");
  }
  std::sort(names.begin(), names.end(), natural_less);
  if (skipped)
    for (const auto& m : missing) skipped->push_back(m + ": no metrics.csv (not a started run), left out");
  std::vector<RunData> runs;
  for (const auto& n : names) runs.push_back(load_run(dir / n));

  // Runs of different models (a directory of runs that are not seeds of one
  // config, like the demo's CLSTM and conv) are compared side by side, never
  // averaged together: one group per model, mean ± std within a group only.
  std::vector<std::string> group_keys;
  std::vector<size_t> group_of(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string& key = runs[i].model_key;  // "" (no config.toml): taken as one more seed
    auto it = std::find(group_keys.begin(), group_keys.end(), key);
    group_of[i] = static_cast<size_t>(it - group_keys.begin());
    if (it == group_keys.end()) group_keys.push_back(key);
  }
  const bool one_model = group_keys.size() == 1;

  // One row per run; the seed and test numbers come from repeat.json where it
  // lists the run, from the run's own summary otherwise (still running).
  std::vector<std::string> labels;
  std::vector<double> test_ua, test_wa;
  std::string rows;
  size_t not_in_repeat = 0;  // runs shown but not in repeat.json's mean (still running, or left from another repeat)
  for (size_t i = 0; i < runs.size(); ++i) {
    const RepeatRun* rr = nullptr;
    if (repeat)
      for (const auto& r : repeat->runs)
        if (fs::path(r.dir).lexically_normal().filename() == names[i]) rr = &r;
    if (repeat && !rr) ++not_in_repeat;
    const auto& s = runs[i].summary;
    const double ua = rr ? rr->test_ua_recall : s ? s->test_ua_recall : kNaN;
    const double wa = rr ? rr->test_wa : s ? s->test_wa : kNaN;
    labels.push_back(rr ? fmt::format("seed {}", rr->seed) : names[i]);
    test_ua.push_back(ua);
    test_wa.push_back(wa);
    rows += fmt::format(
        "<tr>{}<td>{}</td><td><a href=\"#{}\">{}</a></td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td></tr>\n",
        one_model ? "" : fmt::format("<td>{}</td>", esc(runs[i].model_name.empty() ? "?" : runs[i].model_name)),
        rr ? std::to_string(rr->seed) : "—", esc(crnn::file_safe_name(names[i])), esc(names[i]),
        s ? std::to_string(s->epochs_run) : std::to_string(runs[i].metrics.size()) + " so far",
        s && s->best_epoch > 0 ? std::to_string(s->best_epoch) : "—",
        pct(s ? s->val_ua_recall : kNaN), pct(ua), pct(wa));
  }
  const MeanStd ua_ms = mean_std(test_ua), wa_ms = mean_std(test_wa);
  double ua_mean = ua_ms.mean, ua_std = ua_ms.std, wa_mean = wa_ms.mean, wa_std = wa_ms.std;
  if (repeat) {  // `crnn repeat`'s own numbers are authoritative once written
    ua_mean = repeat->test_ua_recall.mean, ua_std = repeat->test_ua_recall.std;
    wa_mean = repeat->test_wa.mean, wa_std = repeat->test_wa.std;
  }

  fs::create_directories(out);
  std::string body = "<nav>";
  for (const auto& n : names) body += fmt::format("<a href=\"#{}\">{}</a>", esc(crnn::file_safe_name(n)), esc(n));
  body += "</nav>\n<section id=\"overview\">\n<h2>Overview</h2>\n";
  body += fmt::format("<p class=\"path\">{}</p>\n", esc(dir.string()));
  body += std::string("<table class=\"runs\">\n<tr>") + (one_model ? "" : "<th>model</th>") +
          "<th>seed</th><th>run</th><th>epochs</th><th>best epoch</th>"
          "<th>val UA recall</th><th>test UA recall</th><th>test WA</th></tr>\n" +
          rows;
  if (one_model) {
    body += fmt::format("<tr><th colspan=\"5\">mean ± std{}</th><td class=\"num\">{}</td>"
                        "<td class=\"num\">{}</td></tr>\n</table>\n",
                        !repeat           ? " (from the runs so far)"
                        : not_in_repeat == 0 ? " (repeat.json)"
                                             : fmt::format(" (repeat.json: {} run(s); the {} shown without a seed are not in it)",
                                                           repeat->runs.size(), not_in_repeat),
                        esc(mean_std_pct(ua_mean, ua_std)), esc(mean_std_pct(wa_mean, wa_std)));
  } else {
    // Per model: the mean ± std of its own runs (seeds), never across models.
    for (size_t g = 0; g < group_keys.size(); ++g) {
      std::vector<double> ua, wa;
      std::string name;
      for (size_t i = 0; i < runs.size(); ++i)
        if (group_of[i] == g) ua.push_back(test_ua[i]), wa.push_back(test_wa[i]), name = runs[i].model_name;
      if (ua.size() < 2) continue;
      const MeanStd u = mean_std(ua), w = mean_std(wa);
      body += fmt::format("<tr><th colspan=\"6\">{}: mean ± std over its {} runs</th><td class=\"num\">{}</td>"
                          "<td class=\"num\">{}</td></tr>\n",
                          esc(name.empty() ? "?" : name), ua.size(), esc(mean_std_pct(u.mean, u.std)),
                          esc(mean_std_pct(w.mean, w.std)));
    }
    body += "</table>\n";
    body += fmt::format("<p>{} different models: compared side by side, not averaged together.</p>\n",
                        group_keys.size());
  }
  BarChart bars;
  bars.title = "Test UA recall per run";
  bars.x_label = "run";
  bars.y_label = "test UA recall (%)";
  bars.categories = labels;
  for (double v : test_ua) bars.values.push_back(100 * v);
  if (!one_model)
    for (size_t i = 0; i < runs.size(); ++i)
      if (!runs[i].model_name.empty()) bars.categories[i] = runs[i].model_name.substr(0, runs[i].model_name.find(','));
  if (one_model && std::isfinite(ua_mean)) {
    bars.band_mean = 100 * ua_mean;
    if (std::isfinite(ua_std)) bars.band_std = 100 * ua_std;
    bars.band_label = std::isfinite(ua_std) ? "mean ± std" : "mean";
    bars.title += " — mean " + mean_std_pct(ua_mean, ua_std);
  }
  write_text(out / "overview.svg", bar_chart_svg(bars), written);
  body += "<div class=\"figures\">\n" + figure("overview.svg", "test UA recall per run") +
          "</div>\n</section>\n";

  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string sub = crnn::file_safe_name(names[i]);
    body += render_run(runs[i], names[i], sub, out / sub, sub + "/", written);
  }
  const std::string name = base_name(dir);
  write_text(out / "index.html",
             page(one_model ? fmt::format("Repeated runs: {} ({} runs)", name.empty() ? dir_arg : name, runs.size())
                            : fmt::format("Runs: {} ({} runs of {} different models)", name.empty() ? dir_arg : name,
                                          runs.size(), group_keys.size()),
                  body),
             written);
  return written;
}

}  // namespace crnn::train

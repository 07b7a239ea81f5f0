#include "crnn/train/experiment_results.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "crnn/train/charts.h"
#include "crnn/train/cross_validation.h"
#include "crnn/train/experiment_runner.h"
#include "crnn/train/run_files.h"
#include "crnn/util/file_io.h"
#include "crnn/util/json_text.h"
#include "crnn/util/progress.h"
#include "crnn/util/text.h"

namespace fs = std::filesystem;

namespace crnn::train {
namespace {

/// The lowest training loss in a run's metrics.csv; NaN when there is none.
double lowest_train_loss(const std::string& metrics_path) {
  double lowest = std::nan("");
  if (!fs::exists(metrics_path)) return lowest;
  for (const auto& m : read_metrics_csv(metrics_path))
    if (std::isfinite(m.train_loss) && !(m.train_loss >= lowest)) lowest = m.train_loss;
  return lowest;
}

std::string pct(double v) { return crnn::percent(v, 2); }

double mean_finite(const std::vector<double>& v) { return mean_std(v).mean; }
size_t count_finite(const std::vector<double>& v) { return mean_std(v).n; }

/// "mean ± std" (n ≥ 2), the value alone (n = 1) or "—".
std::string mean_pm(const MeanStd& m) {
  if (m.n == 0) return "—";
  return m.n < 2 ? pct(m.mean) : fmt::format("{} ± {}", pct(m.mean), pct(m.std));
}

/// The cross-validations of a table: each `folds = K` axis (its K rounds
/// follow each other) crossed with every entry of the other axis.
struct CrossValidationCells {
  std::string row, column;                        ///< names in the table (the folded axis by its own name)
  std::vector<std::pair<size_t, size_t>> cells;   ///< (row, column) of fold 0 .. K−1
};

std::vector<CrossValidationCells> cross_validations(const ExperimentTable& t) {
  const auto folded = [](const std::vector<ExperimentAxis>& axes) {
    std::vector<std::pair<size_t, size_t>> out;  // (first round, K)
    for (size_t i = 0; i < axes.size(); ++i)
      if (axes[i].folds > 0 && axes[i].fold == 0 && i + static_cast<size_t>(axes[i].folds) <= axes.size())
        out.emplace_back(i, static_cast<size_t>(axes[i].folds));
    return out;
  };
  std::vector<CrossValidationCells> out;
  for (const auto& [c0, k] : folded(t.columns))
    for (size_t r = 0; r < t.rows.size(); ++r) {
      CrossValidationCells g{t.rows[r].name, t.columns[c0].fold_of, {}};
      for (size_t f = 0; f < k; ++f) g.cells.emplace_back(r, c0 + f);
      out.push_back(std::move(g));
    }
  for (const auto& [r0, k] : folded(t.rows))
    for (size_t c = 0; c < t.columns.size(); ++c) {
      CrossValidationCells g{t.rows[r0].fold_of, t.columns[c].name, {}};
      for (size_t f = 0; f < k; ++f) g.cells.emplace_back(r0 + f, c);
      out.push_back(std::move(g));
    }
  return out;
}

/// One of the paper's row or column averages: "[k/n]" after it when only k of
/// the n cells it averages have runs, so a partial average is not read as a
/// full one.
std::string average_text(double mean, size_t k, size_t n, bool italic) {
  const std::string mark = italic ? "*" : "";
  std::string text = mark + pct(mean) + mark;
  if (k > 0 && k < n) text += fmt::format(" [{}/{}]", k, n);
  return text;
}

}  // namespace

std::string write_experiment_results(const Experiment& e, const ExperimentPlan& plan, const std::string& out_dir,
                                     const ExperimentOptions& o) {
  const fs::path out(out_dir);
  fs::create_directories(out);
  std::string md = "# " + (e.title.empty() ? std::string("Experiment results") : e.title) + "\n\n";
  if (!o.command.empty()) md += "Regenerate (finished runs are skipped): `" + o.command + "`\n\n";
  nlohmann::json js;
  js["title"] = e.title;
  js["source"] = e.source;
  js["tables"] = nlohmann::json::array();

  // Whole-run estimates: results.md is a function of the finished runs only.
  const ExperimentProgress progress = experiment_progress(e, plan, out_dir, /*count_trained_epochs=*/false);
  const auto& pg = progress;
  md += fmt::format("Finished runs: **{} of {}**; their training wall time adds up to {} (h:mm:ss).", pg.finished,
                    pg.planned, format_duration(pg.wall_seconds));
  if (pg.finished < pg.planned) {
    const int64_t estimated = pg.estimated_by_cell + pg.estimated_by_model;
    md += fmt::format(" The {} unfinished runs", pg.planned - pg.finished);
    if (estimated > 0)
      md += fmt::format(" need about {} more training time (one process; {} estimated from their own cell's finished "
                        "runs, {} from finished runs of the same model preset, on the same task where there are any",
                        format_duration(pg.remaining_seconds), pg.estimated_by_cell, pg.estimated_by_model);
    md += pg.unestimated > 0 ? fmt::format("{}{} have no finished run of their kind yet and are not estimated",
                                           estimated > 0 ? "; " : ": ", pg.unestimated)
                             : "";
    md += estimated > 0 ? ")." : ".";
  }
  md += "\n\n";
  js["planned_runs"] = pg.planned;
  js["finished_runs"] = pg.finished;
  js["estimated_remaining_seconds"] = pg.remaining_seconds;
  js["unestimated_runs"] = pg.unestimated;
  js["wall_seconds"] = pg.wall_seconds;

  for (size_t ti : plan.tables) {
    const auto& t = e.tables[ti];
    const size_t R = t.rows.size(), C = t.columns.size();
    std::vector<std::vector<RepeatSummary>> sums(R, std::vector<RepeatSummary>(C));
    for (size_t r = 0; r < R; ++r)
      for (size_t c = 0; c < C; ++c) sums[r][c] = collect_cell(out_dir, plan.cells[plan.grid[ti][r][c]], t.seeds);

    // The first finished run's summary of a cell (none when the cell has no finished run).
    auto first_summary = [&](size_t r, size_t c) -> std::optional<RunSummary> {
      const auto& s = sums[r][c];
      if (s.runs.empty()) return std::nullopt;
      const auto& cell = plan.cells[plan.grid[ti][r][c]];
      return read_run_summary((fs::path(out_dir) / cell.dir / s.runs.front().dir / "summary.json").string());
    };
    // Chance level of each column: 1 / number of classes, from any finished run.
    std::vector<double> chance(C, std::nan(""));
    for (size_t c = 0; c < C; ++c)
      for (size_t r = 0; r < R && !std::isfinite(chance[c]); ++r) {
        auto first = first_summary(r, c);
        if (first && !first->labels.empty()) chance[c] = 1.0 / static_cast<double>(first->labels.size());
      }
    // Classes absent from a cell's test split (its first run's eval_test.json;
    // every seed of a cell has the same split): UA recall averages the classes
    // present, so the chance row (1 / all classes) does not hold for it.
    auto missing_test_classes = [&](size_t r, size_t c) -> std::vector<std::string> {
      const auto& s = sums[r][c];
      if (s.runs.empty()) return {};
      const auto& cell = plan.cells[plan.grid[ti][r][c]];
      const auto path = fs::path(out_dir) / cell.dir / s.runs.front().dir / "eval_test.json";
      std::error_code ec;
      if (!fs::exists(path, ec)) return {};
      std::vector<std::string> missing;
      try {
        const auto e = read_eval_json(path.string());
        for (size_t k = 0; k < e.per_class_recall.size() && k < e.labels.size(); ++k)
          if (std::isnan(e.per_class_recall[k])) missing.push_back(e.labels[k]);
      } catch (const RunFileError&) {
      }
      return missing;
    };
    std::vector<std::string> lacking;  // footnotes ‡
    md += "## " + t.title + "\n\n";
    if (!t.note.empty()) md += t.note + "\n\n";
    {  // Two cells of this table with the same settings show the same runs: say so.
      std::vector<std::string> same;
      for (const auto& s : plan.same_settings)
        if (s.table == ti)
          same.push_back(fmt::format("{} · {} = {} · {}", t.rows[s.row].name, t.columns[s.column].name,
                                     t.rows[s.first_row].name, t.columns[s.first_column].name));
      if (!same.empty())
        md += fmt::format("**Cells with the same settings, showing the same runs:** {}.\n\n", fmt::join(same, "; "));
    }
    md += fmt::format("Test UA recall (%), mean ± std over seeds 1–{} (sample std); a cell with fewer "
                      "test scores (finished runs with a test split) says how many in brackets (one run: its value alone); an average over only k of its n "
                      "cells says [k/n]. Best mean per column in bold.\n\n",
                      t.seeds);
    // Best mean per column, among cells with at least one run.
    std::vector<double> best(C, -1);
    for (size_t c = 0; c < C; ++c)
      for (size_t r = 0; r < R; ++r)
        if (sums[r][c].test_ua_recall.n > 0) best[c] = std::max(best[c], sums[r][c].test_ua_recall.mean);
    md += "| |";
    for (auto& col : t.columns) md += " " + col.name + " |";
    if (t.row_average) md += " Average |";
    md += "\n|---|";
    for (size_t c = 0; c < C + (t.row_average ? 1 : 0); ++c) md += "---:|";
    md += "\n";
    std::map<std::string, std::vector<double>> row_means;  // row name → mean per column (NaN: none)
    for (size_t r = 0; r < R; ++r) {
      md += "| " + t.rows[r].name + " |";
      std::vector<double> means;
      for (size_t c = 0; c < C; ++c) {
        const auto& s = sums[r][c];
        // Runs without a test score (no test split) are not in the mean, so the
        // count a cell shows is that of the scores, not of the finished runs.
        const size_t n = s.test_ua_recall.n;
        if (n == 0) {
          md += s.runs.empty() ? " — |" : " — (no test split) |";
          means.push_back(std::nan(""));
          continue;
        }
        // One run has no spread: its value alone, not "± 0".
        std::string cell = n < 2 ? pct(s.test_ua_recall.mean)
                                 : fmt::format("{} ± {}", pct(s.test_ua_recall.mean), pct(s.test_ua_recall.std));
        if (s.test_ua_recall.mean == best[c]) cell = "**" + cell + "**";
        if (static_cast<int64_t>(n) < t.seeds) cell += fmt::format(" [{}]", n);
        if (const auto missing = missing_test_classes(r, c); !missing.empty()) {
          const auto first = first_summary(r, c);
          const size_t total = first ? first->labels.size() : 0;
          const size_t present = total > missing.size() ? total - missing.size() : 0;
          cell += "‡";
          lacking.push_back(fmt::format(
              "{} · {}: the test split has no {}; UA recall averages the {} class(es) present, so predicting one class "
              "always scores {}, not the chance row's {}",
              t.rows[r].name, t.columns[c].name, fmt::join(missing, ", "), present,
              present > 0 ? pct(1.0 / static_cast<double>(present)) : "—", pct(chance[c])));
        }
        md += " " + cell + " |";
        means.push_back(s.test_ua_recall.mean);
      }
      if (t.row_average) md += " " + average_text(mean_finite(means), count_finite(means), means.size(), false) + " |";
      md += "\n";
      row_means[t.rows[r].name] = means;
    }
    for (const auto& g : t.groups) {
      md += "| *" + g.name + "* |";
      std::vector<double> col_avg;
      for (size_t c = 0; c < C; ++c) {
        std::vector<double> v;
        for (const auto& rn : g.rows) v.push_back(row_means[rn][c]);
        col_avg.push_back(mean_finite(v));
        md += " " + average_text(col_avg.back(), count_finite(v), v.size(), true) + " |";
      }
      if (t.row_average) {
        std::vector<double> cells;  // every (row, column) mean the group's average rests on
        for (const auto& rn : g.rows) cells.insert(cells.end(), row_means[rn].begin(), row_means[rn].end());
        md += " " + average_text(mean_finite(col_avg), count_finite(cells), cells.size(), true) + " |";
      }
      md += "\n";
    }
    md += "| *chance (1 / classes)* |";
    for (size_t c = 0; c < C; ++c) md += " *" + pct(chance[c]) + "* |";
    if (t.row_average) md += " |";
    md += "\n";
    if (!lacking.empty()) md += "\n‡ " + fmt::format("{}", fmt::join(lacking, ".\n\n‡ ")) + ".\n";
    // Cross-validations: pooled over the folds and spread across them.
    nlohmann::json jcv = nlohmann::json::array();
    if (const auto cvs = cross_validations(t); !cvs.empty()) {
      md += "\n**Cross-validation.** Every utterance is tested once, in its fold. *Pooled*: per seed, the UA recall "
            "(and WA) of all the folds' test predictions together, mean ± std over the seeds whose folds all "
            "finished [how many]. *Over folds*: mean ± std over the folds of each fold's mean test UA recall (how "
            "much the result depends on which speakers are tested).\n\n"
            "| row | column | folds scored | pooled UA recall (%) | pooled WA (%) | over folds, UA recall (%) |\n"
            "|---|---|---:|---|---|---|\n";
      for (const auto& g : cvs) {
        std::vector<CrossValidationFold> folds;
        for (const auto& [r, c] : g.cells)
          folds.push_back({(fs::path(out_dir) / plan.cells[plan.grid[ti][r][c]].dir).string(), sums[r][c]});
        const auto cv = summarize_cross_validation(folds);
        const std::string seeds = cv.pooled_ua_recall.n > 0 ? fmt::format(" [{}]", cv.pooled_ua_recall.n) : "";
        md += fmt::format("| {} | {} | {}/{} | {}{} | {} | {} |\n", g.row, g.column, cv.over_folds.n, cv.folds,
                          mean_pm(cv.pooled_ua_recall), seeds, mean_pm(cv.pooled_wa), mean_pm(cv.over_folds));
        nlohmann::json j;
        j["row"] = g.row;
        j["column"] = g.column;
        j["folds"] = cv.folds;
        j["folds_scored"] = cv.over_folds.n;
        j["over_folds_ua_recall_mean"] = number_or_null(cv.over_folds.mean);
        j["over_folds_ua_recall_std"] = number_or_null(cv.over_folds.std);
        j["pooled_seeds"] = cv.pooled_ua_recall.n;
        j["pooled_ua_recall_mean"] = number_or_null(cv.pooled_ua_recall.mean);
        j["pooled_ua_recall_std"] = number_or_null(cv.pooled_ua_recall.std);
        j["pooled_wa_mean"] = number_or_null(cv.pooled_wa.mean);
        j["pooled_wa_std"] = number_or_null(cv.pooled_wa.std);
        j["labels"] = cv.labels;
        j["pooled_confusion"] = cv.pooled_confusion;
        jcv.push_back(j);
      }
    }
    md += fmt::format("\n![{}]({}.svg)\n\n", t.title, t.id);

    // Protocol: what was actually run per cell.
    md += "<details><summary>Protocol per cell</summary>\n\n";
    md += "| row | column | runs | test UA by seed (%) | test WA (%) | epochs run, mean [min–max] | best epoch, mean | "
          "lowest train loss / ln C, by seed | wall per run (min) | speakers train/valid/test | "
          "utterances train/valid/test | run directory |\n";
    md += "|---|---|---:|---|---:|---|---:|---|---:|---|---|---|\n";
    bool any_stalled = false;
    nlohmann::json jt;
    jt["id"] = t.id;
    if (!jcv.empty()) jt["cross_validation"] = jcv;  // tables with a `folds = K` axis
    jt["title"] = t.title;
    jt["seeds"] = t.seeds;
    jt["rows"] = nlohmann::json::array();
    jt["columns"] = nlohmann::json::array();
    for (auto& col : t.columns) jt["columns"].push_back(col.name);
    jt["chance"] = nlohmann::json::array();
    for (double ch : chance) jt["chance"].push_back(number_or_null(ch));
    jt["cells"] = nlohmann::json::array();
    GroupedBarChart chart;
    chart.title = t.title;
    chart.y_label = "test UA recall (%)";
    for (auto& col : t.columns) chart.groups.push_back(col.name);
    for (double ch : chance) chart.reference.push_back(100 * ch);
    chart.width = std::max(760.0, 120.0 * static_cast<double>(C * std::max<size_t>(R, 2)) / 2 + 264);
    for (size_t r = 0; r < R; ++r) {
      jt["rows"].push_back(t.rows[r].name);
      chart.series.push_back(t.rows[r].name);
      chart.values.emplace_back();
      chart.errors.emplace_back();
      nlohmann::json jrow = nlohmann::json::array();
      for (size_t c = 0; c < C; ++c) {
        const auto& s = sums[r][c];
        const auto& cell = plan.cells[plan.grid[ti][r][c]];
        chart.values.back().push_back(100 * s.test_ua_recall.mean);  // NaN (no bar) without a test score
        chart.errors.back().push_back(100 * s.test_ua_recall.std);   // NaN (no whisker) under 2 scores
        std::vector<double> epochs, best_epochs, walls, lowest_losses;
        std::string by_seed, by_loss;
        for (auto& run : s.runs) {
          epochs.push_back(static_cast<double>(run.epochs_run));
          best_epochs.push_back(static_cast<double>(run.best_epoch));
          walls.push_back(run.wall_seconds);
          lowest_losses.push_back(
              lowest_train_loss((fs::path(out_dir) / cell.dir / run.dir / "metrics.csv").string()));
          // † = the selected model is the first epoch's: validation never improved on it.
          const bool stalled = run.best_epoch == 1 && run.epochs_run > 1;
          any_stalled |= stalled;
          by_seed += fmt::format("{}{}: {}{}", by_seed.empty() ? "" : ", ", run.seed, crnn::percent(run.test_ua_recall, 1),
                                 stalled ? "†" : "");
          // The lowest training loss as a fraction of ln C, the loss of a uniform
          // prediction over the (balanced) training set: near 1, the run never
          // left the chance plateau (docs/training.md, "Slow start").
          const double fraction = lowest_losses.back() / -std::log(chance[c]);
          by_loss += fmt::format("{}{}: {}", by_loss.empty() ? "" : ", ", run.seed,
                                 std::isfinite(fraction) ? fmt::format("{:.2f}", fraction) : "—");
        }
        if (by_loss.empty()) by_loss = "—";
        if (by_seed.empty()) by_seed = "—";
        // Speakers and utterances: from the first finished run's summary.json.
        std::string spk = "—", utt = "—";
        if (auto first = first_summary(r, c)) {
          spk = fmt::format("{}/{}/{}", first->train_speakers, first->valid_speakers, first->test_speakers);
          utt = fmt::format("{}/{}/{}", first->train_utterances, first->valid_utterances, first->test_utterances);
        }
        const auto [emin, emax] = epochs.empty() ? std::pair<double, double>{0, 0}
                                                 : std::pair<double, double>{*std::min_element(epochs.begin(), epochs.end()),
                                                                             *std::max_element(epochs.begin(), epochs.end())};
        md += fmt::format("| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | `{}` |\n", t.rows[r].name,
                          t.columns[c].name, s.runs.size(), t.seeds, by_seed,
                          s.test_wa.n < 2 ? pct(s.test_wa.mean)  // "—" without a test score
                                               : fmt::format("{} ± {}", pct(s.test_wa.mean), pct(s.test_wa.std)),
                          epochs.empty() ? "—" : fmt::format("{:.1f} [{:.0f}–{:.0f}]", mean_finite(epochs), emin, emax),
                          best_epochs.empty() ? "—" : fmt::format("{:.1f}", mean_finite(best_epochs)), by_loss,
                          walls.empty() ? "—" : fmt::format("{:.1f}", mean_finite(walls) / 60), spk, utt, cell.dir);
        nlohmann::json jc;
        jc["dir"] = cell.dir;
        jc["runs"] = s.runs.size();
        jc["test_ua_recall_mean"] = s.runs.empty() ? nlohmann::json() : nlohmann::json(s.test_ua_recall.mean);
        jc["test_ua_recall_std"] = s.runs.size() < 2 ? nlohmann::json() : nlohmann::json(s.test_ua_recall.std);
        jc["test_wa_mean"] = s.runs.empty() ? nlohmann::json() : nlohmann::json(s.test_wa.mean);
        jc["test_wa_std"] = s.runs.size() < 2 ? nlohmann::json() : nlohmann::json(s.test_wa.std);
        jc["test_ua_recall"] = nlohmann::json::array();
        for (auto& run : s.runs) jc["test_ua_recall"].push_back(run.test_ua_recall);
        jc["epochs_run"] = epochs;
        jc["best_epoch"] = best_epochs;
        jc["wall_seconds"] = walls;
        jc["lowest_train_loss"] = nlohmann::json::array();
        for (double l : lowest_losses) jc["lowest_train_loss"].push_back(number_or_null(l));
        jrow.push_back(jc);
      }
      jt["cells"].push_back(jrow);
    }
    if (any_stalled)
      md += "\n† the run's selected model is its first epoch's: its validation score (train.selection_metric) never "
            "improved on the first epoch's.\n";
    md += "\nLowest train loss / ln C: the run's lowest training loss over its epochs divided by ln C (C classes), "
          "the loss of a uniform prediction on the class-balanced training set. Near 1.00, the model never fit its "
          "training set better than a uniform guess (the chance plateau of docs/training.md, \"Slow start\").\n";
    md += "\n</details>\n\n";
    write_text_file_atomic((out / (t.id + ".svg")).string(), grouped_bar_chart_svg(chart));
    js["tables"].push_back(jt);
  }
  write_text_file_atomic((out / "results.md").string(), md);
  write_text_file_atomic((out / "results.json").string(), crnn::json_text(js, 2) + "\n");
  return md;
}

}  // namespace crnn::train

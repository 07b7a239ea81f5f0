#include "crnn/train/experiment.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <toml++/toml.h>

#include "crnn/train/toml_input.h"

#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "crnn/train/report.h"
#include "crnn/util/progress.h"
#include "crnn/util/threads.h"
#include "crnn/util/json_text.h"

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

std::string join(const std::string& where, const std::string& key) { return where.empty() ? key : where + "." + key; }

void check_keys(const toml::table& t, const std::string& source, const std::string& where,
                const std::set<std::string>& allowed) {
  for (auto&& [k, v] : t) {
    (void)v;
    const std::string key(k.str());
    if (!allowed.count(key))
      fail_key(source, join(where, key), "unknown key");
  }
}

std::string get_string(const toml::table& t, const std::string& source, const std::string& where,
                       const std::string& key, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) fail_key(source, join(where, key), "required");
    return {};
  }
  if (!n->is_string()) fail_key(source, join(where, key), "expected a string");
  return std::string(*n->value<std::string>());
}

std::vector<std::string> get_strings(const toml::table& t, const std::string& source, const std::string& where,
                                     const std::string& key) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) fail_key(source, join(where, key), "expected an array of strings");
  for (auto&& e : *a) {
    if (!e.is_string()) fail_key(source, join(where, key), "expected an array of strings");
    out.emplace_back(*e.value<std::string>());
  }
  return out;
}

const toml::array* get_tables(const toml::table& t, const std::string& source, const std::string& where,
                              const std::string& key) {
  const toml::node* n = t.get(key);
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables())
    fail_key(source, join(where, key), "expected an array of tables ([[" + join(where, key) + "]])");
  return a;
}

ExperimentAxis read_axis(const toml::table& t, const std::string& source, const std::string& where,
                         const fs::path& base) {
  check_keys(t, source, where, {"name", "config", "set"});
  ExperimentAxis a;
  a.name = get_string(t, source, where, "name", true);
  a.config = get_string(t, source, where, "config", false);
  if (!a.config.empty() && fs::path(a.config).is_relative()) a.config = (base / a.config).lexically_normal().string();
  a.set = get_strings(t, source, where, "set");
  return a;
}

bool file_safe(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

/// FNV-1a, 64 bit: a stable content hash for cell directory names.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out.empty() ? "custom" : out;
}

std::string cell_dir_of(const RunConfig& config) {
  RunConfig c = config;
  c.train.seed = 0;     // every seed of a cell shares the directory
  c.train.threads = 0;  // the thread count does not change what is trained
  return fmt::format("runs/{}-{}-{:012x}", slug(c.data.task), slug(c.model.preset),
                     fnv1a(c.to_toml()) & 0xffffffffffffull);
}

std::string pct(double v) { return std::isfinite(v) ? fmt::format("{:.2f}", 100 * v) : "—"; }

double mean_finite(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / n : std::nan("");
}

size_t count_finite(const std::vector<double>& v) {
  return static_cast<size_t>(std::count_if(v.begin(), v.end(), [](double x) { return std::isfinite(x); }));
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

std::string hms(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(seconds));
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

Experiment Experiment::from_file(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError(path + ": no such experiment file");
  return parse(data::read_text_file(path), path);
}

Experiment Experiment::parse(const std::string& text, const std::string& source) {
  toml::table root = parse_toml(text, source);
  const fs::path base = fs::path(source).parent_path();
  check_keys(root, source, "", {"title", "table"});
  Experiment e;
  e.source = source;
  e.title = get_string(root, source, "", "title", false);
  const toml::array* tables = get_tables(root, source, "", "table");
  if (!tables || tables->empty()) fail_key(source, "table", "no tables ([[table]])");
  std::set<std::string> ids;
  for (size_t i = 0; i < tables->size(); ++i) {
    const auto& t = *tables->get(i)->as_table();
    const std::string where = fmt::format("table.{}", i);
    check_keys(t, source, where, {"id", "title", "note", "seeds", "row_average", "row", "column", "group"});
    ExperimentTable tab;
    tab.id = get_string(t, source, where, "id", true);
    if (!file_safe(tab.id)) fail_key(source, where + ".id", "use letters, digits, '-' and '_' only");
    if (!ids.insert(tab.id).second) fail_key(source, where + ".id", "'" + tab.id + "' is used twice");
    tab.title = get_string(t, source, where, "title", false);
    if (tab.title.empty()) tab.title = tab.id;
    tab.note = get_string(t, source, where, "note", false);
    if (const toml::node* n = t.get("seeds")) {
      // An upper bound: `seeds` is planned run by run, and a typo of 10^18 would plan forever.
      if (!n->is_integer() || *n->value<int64_t>() < 1 || *n->value<int64_t>() > 1000)
        fail_key(source, where + ".seeds", "expected an integer in 1..1000");
      tab.seeds = *n->value<int64_t>();
    }
    if (const toml::node* n = t.get("row_average")) {
      if (!n->is_boolean()) fail_key(source, where + ".row_average", "expected true or false");
      tab.row_average = *n->value<bool>();
    }
    for (const char* key : {"row", "column"}) {
      const toml::array* a = get_tables(t, source, where, key);
      if (!a || a->empty()) fail_key(source, join(where, key), std::string("no ") + key + "s ([[table." + key + "]])");
      auto& axes = std::string(key) == "row" ? tab.rows : tab.columns;
      std::set<std::string> names;
      for (size_t k = 0; k < a->size(); ++k) {
        const std::string w = fmt::format("{}.{}.{}", where, key, k);
        axes.push_back(read_axis(*a->get(k)->as_table(), source, w, base));
        if (!names.insert(axes.back().name).second) fail_key(source, w + ".name", "'" + axes.back().name + "' is used twice");
      }
    }
    if (const toml::array* a = get_tables(t, source, where, "group")) {
      for (size_t k = 0; k < a->size(); ++k) {
        const std::string w = fmt::format("{}.group.{}", where, k);
        const auto& g = *a->get(k)->as_table();
        check_keys(g, source, w, {"name", "rows"});
        ExperimentGroup grp;
        grp.name = get_string(g, source, w, "name", true);
        grp.rows = get_strings(g, source, w, "rows");
        if (grp.rows.empty()) fail_key(source, w + ".rows", "names no rows");
        for (const auto& r : grp.rows) {
          bool found = false;
          for (const auto& row : tab.rows) found |= row.name == r;
          if (!found) fail_key(source, w + ".rows", "no row named '" + r + "' in table " + tab.id);
        }
        tab.groups.push_back(grp);
      }
    }
    for (size_t r = 0; r < tab.rows.size(); ++r)
      for (size_t c = 0; c < tab.columns.size(); ++c)
        if (tab.rows[r].config.empty() && tab.columns[c].config.empty())
          fail_key(source, where, fmt::format("cell ({}, {}) has no config: give one to the row or the column",
                                          tab.rows[r].name, tab.columns[c].name));
    e.tables.push_back(std::move(tab));
  }
  return e;
}

ExperimentPlan plan_experiment(const Experiment& e, const ExperimentOptions& o) {
  if (o.shards < 1 || o.shard < 0 || o.shard >= o.shards)
    throw ConfigError(fmt::format("--shard: {}/{} is not a shard (K/N with 0 <= K < N)", o.shard, o.shards));
  for (const auto& id : o.tables) {
    bool found = false;
    for (const auto& t : e.tables) found |= t.id == id;
    if (!found) throw ConfigError(fmt::format("{}: no table with id '{}'", e.source, id));
  }
  ExperimentPlan p;
  std::map<std::string, size_t> by_dir;
  for (size_t ti = 0; ti < e.tables.size(); ++ti) {
    const auto& t = e.tables[ti];
    if (!o.tables.empty() && std::find(o.tables.begin(), o.tables.end(), t.id) == o.tables.end()) {
      p.grid.emplace_back();
      continue;
    }
    p.tables.push_back(ti);
    std::vector<std::vector<size_t>> grid(t.rows.size(), std::vector<size_t>(t.columns.size()));
    for (size_t r = 0; r < t.rows.size(); ++r) {
      for (size_t c = 0; c < t.columns.size(); ++c) {
        const auto& row = t.rows[r];
        const auto& col = t.columns[c];
        const std::string label = fmt::format("{} · {} · {}", t.id, row.name, col.name);
        std::vector<std::string> overrides = col.set;
        overrides.insert(overrides.end(), row.set.begin(), row.set.end());
        overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
        RunConfig cfg;
        try {
          cfg = RunConfig::from_file(row.config.empty() ? col.config : row.config, overrides);
        } catch (const ConfigError& err) {
          throw ConfigError(fmt::format("{}: {}: {}", e.source, label, err.what()));
        } catch (const data::DataError& err) {  // the config path is a directory, unreadable, ...
          throw ConfigError(fmt::format("{}: {}: {}", e.source, label, err.what()));
        }
        const std::string dir = cell_dir_of(cfg);
        auto [it, fresh] = by_dir.emplace(dir, p.cells.size());
        if (fresh) p.cells.push_back(ExperimentCell{cfg, dir, label, 0});
        p.cells[it->second].seeds = std::max(p.cells[it->second].seeds, t.seeds);
        grid[r][c] = it->second;
      }
    }
    p.grid.push_back(std::move(grid));
  }
  int64_t max_seeds = 0;
  for (const auto& c : p.cells) max_seeds = std::max(max_seeds, c.seeds);
  for (int64_t s = 1; s <= max_seeds; ++s)
    for (size_t c = 0; c < p.cells.size(); ++c)
      if (s <= p.cells[c].seeds) p.jobs.push_back({c, static_cast<uint64_t>(s)});
  return p;
}

RepeatSummary collect_cell(const std::string& out_dir, const ExperimentCell& cell, int64_t seeds) {
  RepeatSummary s;
  const fs::path dir = fs::path(out_dir) / cell.dir;
  if (!fs::is_directory(dir)) return s;
  for (auto& r : read_repeat(dir.string()).runs)
    if (r.seed >= 1 && r.seed <= static_cast<uint64_t>(seeds)) s.runs.push_back(r);
  summarize(s);
  return s;
}

ExperimentProgress experiment_progress(const Experiment& e, const ExperimentPlan& plan, const std::string& out_dir) {
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
    if (fs::exists(metrics)) {
      try {
        for (const auto& m : read_metrics_csv(metrics.string()))
          if (std::isfinite(m.epoch_seconds)) done += m.epoch_seconds;
      } catch (const ReportError&) {
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

  const ExperimentProgress progress = experiment_progress(e, plan, out_dir);
  const auto& pg = progress;
  md += fmt::format("Finished runs: **{} of {}**; their training wall time adds up to {} (h:mm:ss).", pg.finished,
                    pg.planned, hms(pg.wall_seconds));
  if (pg.finished < pg.planned) {
    const int64_t estimated = pg.estimated_by_cell + pg.estimated_by_model;
    md += fmt::format(" The {} unfinished runs", pg.planned - pg.finished);
    if (estimated > 0)
      md += fmt::format(" need about {} more training time (one process; {} estimated from their own cell's finished "
                        "runs, {} from finished runs of the same model preset, on the same task where there are any",
                        hms(pg.remaining_seconds), pg.estimated_by_cell, pg.estimated_by_model);
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

    // The first finished run's summary.json of a cell (null when none or unreadable).
    auto first_summary = [&](size_t r, size_t c) {
      const auto& s = sums[r][c];
      if (s.runs.empty()) return nlohmann::json();
      const auto& cell = plan.cells[plan.grid[ti][r][c]];
      try {
        return nlohmann::json::parse(
            data::read_text_file((fs::path(out_dir) / cell.dir / s.runs.front().dir / "summary.json").string()));
      } catch (const std::exception&) {
        return nlohmann::json();
      }
    };
    // Chance level of each column: 1 / number of classes, from any finished run.
    std::vector<double> chance(C, std::nan(""));
    for (size_t c = 0; c < C; ++c)
      for (size_t r = 0; r < R && !std::isfinite(chance[c]); ++r) {
        auto j = first_summary(r, c);
        if (j.contains("labels") && j["labels"].is_array() && !j["labels"].empty())
          chance[c] = 1.0 / static_cast<double>(j["labels"].size());
      }
    md += "## " + t.title + "\n\n";
    if (!t.note.empty()) md += t.note + "\n\n";
    md += fmt::format("Test UA recall (%), mean ± std over seeds 1–{} (sample std); a cell with fewer "
                      "finished runs says how many in brackets (one run: its value alone); an average over only k of its n "
                      "cells says [k/n]. Best mean per column in bold.\n\n",
                      t.seeds);
    // Best mean per column, among cells with at least one run.
    std::vector<double> best(C, -1);
    for (size_t c = 0; c < C; ++c)
      for (size_t r = 0; r < R; ++r)
        if (!sums[r][c].runs.empty()) best[c] = std::max(best[c], sums[r][c].test_ua_recall_mean);
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
        if (s.runs.empty()) {
          md += " — |";
          means.push_back(std::nan(""));
          continue;
        }
        // One run has no spread: its value alone, not "± 0".
        std::string cell = s.runs.size() < 2 ? pct(s.test_ua_recall_mean)
                                             : fmt::format("{} ± {}", pct(s.test_ua_recall_mean), pct(s.test_ua_recall_std));
        if (s.test_ua_recall_mean == best[c]) cell = "**" + cell + "**";
        if (static_cast<int64_t>(s.runs.size()) < t.seeds) cell += fmt::format(" [{}]", s.runs.size());
        md += " " + cell + " |";
        means.push_back(s.test_ua_recall_mean);
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
    jt["title"] = t.title;
    jt["seeds"] = t.seeds;
    jt["rows"] = nlohmann::json::array();
    jt["columns"] = nlohmann::json::array();
    for (auto& col : t.columns) jt["columns"].push_back(col.name);
    jt["chance"] = nlohmann::json::array();
    for (double ch : chance) jt["chance"].push_back(std::isfinite(ch) ? nlohmann::json(ch) : nlohmann::json());
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
        chart.values.back().push_back(s.runs.empty() ? std::nan("") : 100 * s.test_ua_recall_mean);
        chart.errors.back().push_back(s.runs.size() < 2 ? std::nan("") : 100 * s.test_ua_recall_std);
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
          by_seed += fmt::format("{}{}: {:.1f}{}", by_seed.empty() ? "" : ", ", run.seed, 100 * run.test_ua_recall,
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
        if (auto first = first_summary(r, c); first.is_object()) {
          spk = fmt::format("{}/{}/{}", first.value("train_speakers", 0), first.value("valid_speakers", 0),
                            first.value("test_speakers", 0));
          utt = fmt::format("{}/{}/{}", first.value("train_utterances", 0), first.value("valid_utterances", 0),
                            first.value("test_utterances", 0));
        }
        const auto [emin, emax] = epochs.empty() ? std::pair<double, double>{0, 0}
                                                 : std::pair<double, double>{*std::min_element(epochs.begin(), epochs.end()),
                                                                             *std::max_element(epochs.begin(), epochs.end())};
        md += fmt::format("| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | `{}` |\n", t.rows[r].name,
                          t.columns[c].name, s.runs.size(), t.seeds, by_seed,
                          s.runs.empty()       ? "—"
                          : s.runs.size() < 2  ? pct(s.test_wa_mean)
                                               : fmt::format("{} ± {}", pct(s.test_wa_mean), pct(s.test_wa_std)),
                          epochs.empty() ? "—" : fmt::format("{:.1f} [{:.0f}–{:.0f}]", mean_finite(epochs), emin, emax),
                          best_epochs.empty() ? "—" : fmt::format("{:.1f}", mean_finite(best_epochs)), by_loss,
                          walls.empty() ? "—" : fmt::format("{:.1f}", mean_finite(walls) / 60), spk, utt, cell.dir);
        nlohmann::json jc;
        jc["dir"] = cell.dir;
        jc["runs"] = s.runs.size();
        jc["test_ua_recall_mean"] = s.runs.empty() ? nlohmann::json() : nlohmann::json(s.test_ua_recall_mean);
        jc["test_ua_recall_std"] = s.runs.size() < 2 ? nlohmann::json() : nlohmann::json(s.test_ua_recall_std);
        jc["test_wa_mean"] = s.runs.empty() ? nlohmann::json() : nlohmann::json(s.test_wa_mean);
        jc["test_wa_std"] = s.runs.size() < 2 ? nlohmann::json() : nlohmann::json(s.test_wa_std);
        jc["test_ua_recall"] = nlohmann::json::array();
        for (auto& run : s.runs) jc["test_ua_recall"].push_back(run.test_ua_recall);
        jc["epochs_run"] = epochs;
        jc["best_epoch"] = best_epochs;
        jc["wall_seconds"] = walls;
        jc["lowest_train_loss"] = nlohmann::json::array();
        for (double l : lowest_losses) jc["lowest_train_loss"].push_back(std::isfinite(l) ? nlohmann::json(l) : nlohmann::json());
        jrow.push_back(jc);
      }
      jt["cells"].push_back(jrow);
    }
    if (any_stalled)
      md += "\n† the run's selected model is its first epoch's: validation UA recall never improved on it, "
            "and early stopping ended the run after the patience.\n";
    md += "\nLowest train loss / ln C: the run's lowest training loss over its epochs divided by ln C (C classes), "
          "the loss of a uniform prediction on the class-balanced training set. Near 1.00, the model never fit its "
          "training set better than a uniform guess (the chance plateau of docs/training.md, \"Slow start\").\n";
    md += "\n</details>\n\n";
    data::write_text_file_atomic((out / (t.id + ".svg")).string(), grouped_bar_chart_svg(chart));
    js["tables"].push_back(jt);
  }
  data::write_text_file_atomic((out / "results.md").string(), md);
  data::write_text_file_atomic((out / "results.json").string(), crnn::json_text(js, 2) + "\n");
  return md;
}

std::vector<size_t> shard_jobs(const ExperimentPlan& plan, const ExperimentOptions& o) {
  std::vector<size_t> mine;
  for (size_t i = 0; i < plan.jobs.size(); ++i)
    if (static_cast<int64_t>(i % static_cast<size_t>(o.shards)) == o.shard) mine.push_back(i);
  return mine;
}

bool job_finished(const ExperimentPlan& plan, size_t job, const std::string& out_dir) {
  const auto& j = plan.jobs.at(job);
  return run_finished((fs::path(out_dir) / plan.cells[j.cell].dir / fmt::format("seed_{}", j.seed)).string());
}

void train_job(const ExperimentPlan& plan, size_t job, const std::string& out_dir, std::ostream& log) {
  const auto& j = plan.jobs.at(job);
  const auto& cell = plan.cells[j.cell];
  if (cell.config.train.threads > 0) set_num_threads(static_cast<int>(cell.config.train.threads));
  run_seed(cell.config, (fs::path(out_dir) / cell.dir).string(), j.seed, log, "experiment");
}

RepeatRun record_job(const Experiment& e, const ExperimentPlan& plan, size_t job, const std::string& out_dir,
                     const ExperimentOptions& o) {
  const auto& j = plan.jobs.at(job);
  const auto& cell = plan.cells[j.cell];
  auto s = collect_cell(out_dir, cell, cell.seeds);
  write_repeat_files(s, (fs::path(out_dir) / cell.dir).string(), cell.config);
  write_experiment_results(e, plan, out_dir, o);
  for (const auto& r : s.runs)
    if (r.seed == j.seed) return r;
  throw std::runtime_error(fmt::format("{}/{}/seed_{}: no finished run to record", out_dir, cell.dir, j.seed));
}

ExperimentOutcome run_experiment(const Experiment& e, const std::string& out_dir, const ExperimentOptions& o,
                                 std::ostream& log) {
  const ExperimentPlan plan = plan_experiment(e, o);
  ExperimentOutcome outcome;
  const std::vector<size_t> mine = shard_jobs(plan, o);
  log << fmt::format("experiment: {} table(s), {} distinct cells, {} runs{}\n", plan.tables.size(), plan.cells.size(),
                     plan.jobs.size(),
                     o.shards > 1 ? fmt::format(" ({} in shard {}/{})", mine.size(), o.shard, o.shards) : "");
  if (o.train) {
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
      else if (outcome.trained > 0) eta = ", ETA " + hms(trained_seconds / outcome.trained * left) + " at this pace";
      log << fmt::format("experiment: run {}/{}: {}, seed {}{}\n", k + 1, mine.size(), cell.label, job.seed, eta);
      const auto t0 = std::chrono::steady_clock::now();
      try {
        train_job(plan, mine[k], out_dir, log);
        ++outcome.trained;
        trained_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        record_job(e, plan, mine[k], out_dir, o);
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
  write_experiment_results(e, plan, out_dir, o);
  return outcome;
}

}  // namespace crnn::train

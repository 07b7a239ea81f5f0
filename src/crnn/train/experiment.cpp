#include "crnn/train/experiment.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <toml++/toml.h>

#include "crnn/data/error.h"
#include "crnn/train/repeat.h"
#include "crnn/train/run_data.h"
#include "crnn/train/toml_input.h"
#include "crnn/util/file_io.h"
#include "crnn/util/text.h"

namespace fs = std::filesystem;

namespace crnn::train {
namespace {

/// A row or column; with `folds = K`, K of them, "NAME, fold 0" .. "NAME, fold K−1",
/// each adding data.folds = K and its data.fold to the set: every round of a
/// speaker-group cross-validation, averaged by row_average.
std::vector<ExperimentAxis> read_axes(const TomlReader& r, const toml::table& t, const std::string& where,
                                      const fs::path& base) {
  r.check_keys(t, where, {"name", "config", "set", "folds"});
  ExperimentAxis a;
  a.name = r.string(t, where, "name", /*required=*/true);
  a.config = r.string(t, where, "config");
  if (!a.config.empty() && fs::path(a.config).is_relative()) a.config = (base / a.config).lexically_normal().string();
  a.set = r.strings(t, where, "set");
  int64_t folds = 0;
  r.get(t, where, "folds", folds);
  if (folds == 0 && !t.contains("folds")) return {a};
  if (folds < 3 || folds > 100) r.fail(where, "folds", "expected an integer in 3..100 (cross-validation rounds)");
  for (const auto& s : a.set) {
    const std::string key = crnn::trim(s.substr(0, s.find('=')));
    if (key == "data.folds" || key == "data.fold")
      r.fail(where, "set", "'" + s + "': `folds` sets data.folds and data.fold for each round");
  }
  std::vector<ExperimentAxis> rounds;
  for (int64_t f = 0; f < folds; ++f) {
    ExperimentAxis round = a;
    round.name = fmt::format("{}, fold {}", a.name, f);
    round.set.push_back(fmt::format("data.folds={}", folds));
    round.set.push_back(fmt::format("data.fold={}", f));
    round.fold_of = a.name;
    round.fold = f;
    round.folds = folds;
    rounds.push_back(std::move(round));
  }
  return rounds;
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
                     fnv1a(c.identity_toml()) & 0xffffffffffffull);
}

}  // namespace

Experiment Experiment::from_file(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError(path + ": no such experiment file");
  return parse(crnn::read_text_file(path), path);
}

Experiment Experiment::parse(const std::string& text, const std::string& source) {
  toml::table root = parse_toml(text, source);
  const fs::path base = fs::path(source).parent_path();
  const TomlReader rd{source};
  rd.check_keys(root, "", {"title", "table"});
  Experiment e;
  e.source = source;
  e.title = rd.string(root, "", "title");
  const toml::array* tables = rd.tables(root, "", "table");
  if (!tables || tables->empty()) rd.fail("", "table", "no tables ([[table]])");
  std::set<std::string> ids;
  for (size_t i = 0; i < tables->size(); ++i) {
    const auto& t = *tables->get(i)->as_table();
    const std::string where = fmt::format("table.{}", i);
    rd.check_keys(t, where, {"id", "title", "note", "seeds", "row_average", "row", "column", "group"});
    ExperimentTable tab;
    tab.id = rd.string(t, where, "id", /*required=*/true);
    if (!crnn::is_file_safe(tab.id)) rd.fail(where, "id", "use letters, digits, '-' and '_' only");
    if (!ids.insert(tab.id).second) rd.fail(where, "id", "'" + tab.id + "' is used twice");
    tab.title = rd.string(t, where, "title");
    if (tab.title.empty()) tab.title = tab.id;
    tab.note = rd.string(t, where, "note");
    rd.get(t, where, "seeds", tab.seeds);
    // An upper bound: `seeds` is planned run by run, and a typo of 10^18 would plan forever.
    if (tab.seeds < 1 || tab.seeds > 1000) rd.fail(where, "seeds", "expected an integer in 1..1000");
    rd.get(t, where, "row_average", tab.row_average);
    for (const char* key : {"row", "column"}) {
      const toml::array* a = rd.tables(t, where, key);
      if (!a || a->empty()) rd.fail(where, key, std::string("no ") + key + "s ([[table." + key + "]])");
      auto& axes = std::string(key) == "row" ? tab.rows : tab.columns;
      std::set<std::string> names;
      for (size_t k = 0; k < a->size(); ++k) {
        const std::string w = fmt::format("{}.{}.{}", where, key, k);
        for (auto& axis : read_axes(rd, *a->get(k)->as_table(), w, base)) {
          if (!names.insert(axis.name).second) rd.fail(w, "name", "'" + axis.name + "' is used twice");
          axes.push_back(std::move(axis));
        }
      }
    }
    if (const toml::array* a = rd.tables(t, where, "group")) {
      for (size_t k = 0; k < a->size(); ++k) {
        const std::string w = fmt::format("{}.group.{}", where, k);
        const auto& g = *a->get(k)->as_table();
        rd.check_keys(g, w, {"name", "rows"});
        ExperimentGroup grp;
        grp.name = rd.string(g, w, "name", /*required=*/true);
        grp.rows = rd.strings(g, w, "rows");
        if (grp.rows.empty()) rd.fail(w, "rows", "names no rows");
        for (const auto& r : grp.rows) {
          bool found = false;
          for (const auto& row : tab.rows) found |= row.name == r;
          if (!found) rd.fail(w, "rows", "no row named '" + r + "' in table " + tab.id);
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

std::vector<std::string> same_settings_warnings(const Experiment& e, const ExperimentPlan& plan) {
  std::vector<std::string> lines;
  for (const auto& s : plan.same_settings) {
    const auto& t = e.tables[s.table];
    lines.push_back(fmt::format("{}: {} · {} · {} has the same settings as {} · {} · {}: both show the same runs (a "
                                "mistyped set?)",
                                e.source, t.id, t.rows[s.row].name, t.columns[s.column].name, t.id,
                                t.rows[s.first_row].name, t.columns[s.first_column].name));
  }
  return lines;
}

ExperimentPlan plan_experiment(const Experiment& e, const ExperimentOptions& o) {
  if (o.shards < 1 || o.shard < 0 || o.shard >= o.shards)
    throw ConfigError(fmt::format("--shard: {}/{} is not a shard (K/N with 0 <= K < N)", o.shard, o.shards));
  for (const auto& id : o.tables) {
    bool found = false;
    std::vector<std::string> ids;
    for (const auto& t : e.tables) {
      found |= t.id == id;
      ids.push_back(t.id);
    }
    if (!found)
      throw ConfigError(fmt::format("{}: no table with id '{}' (tables: {})", e.source, id, fmt::join(ids, ", ")));
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
    std::map<size_t, std::pair<size_t, size_t>> first_in_table;  // cell → its first row and column in this table
    for (size_t r = 0; r < t.rows.size(); ++r) {
      for (size_t c = 0; c < t.columns.size(); ++c) {
        const auto& row = t.rows[r];
        const auto& col = t.columns[c];
        const std::string label = fmt::format("{} · {} · {}", t.id, row.name, col.name);
        std::vector<std::string> overrides = col.set;
        overrides.insert(overrides.end(), row.set.begin(), row.set.end());
        overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
        // A folded axis gives each round its data.fold: set again by the other
        // axis or the command line, every round would be the same fold.
        if (row.folds > 0 && col.folds > 0)
          throw ConfigError(fmt::format("{}: {}: `folds` on both a row and a column of one table; give it to one "
                                        "of them",
                                        e.source, label));
        if (row.folds > 0 || col.folds > 0) {
          const auto& other = row.folds > 0 ? col.set : row.set;
          for (size_t k = 0; k < other.size() + o.overrides.size(); ++k) {
            const std::string& set = k < other.size() ? other[k] : o.overrides[k - other.size()];
            const std::string key = crnn::trim(set.substr(0, set.find('=')));
            if (key == "data.fold" || key == "data.folds")
              throw ConfigError(fmt::format("{}: {}: '{}'{}: `folds` sets data.folds and data.fold for each round",
                                            e.source, label, set, k < other.size() ? "" : " (--set)"));
          }
        }
        // Each cell runs seeds 1..seeds: a seed set here would be replaced without a word.
        for (size_t k = 0; k < overrides.size(); ++k)
          if (crnn::trim(overrides[k].substr(0, overrides[k].find('='))) == "train.seed") {
            const bool command_line = k >= overrides.size() - o.overrides.size();
            throw ConfigError(fmt::format("{}: {}: '{}'{}: an experiment trains seeds 1..seeds of every cell; {}",
                                          e.source, label, overrides[k], command_line ? " (--set)" : "",
                                          command_line ? "drop the --set (a table's seeds say how many)"
                                                       : "set the table's seeds instead of train.seed"));
          }
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
        // Shared cells across tables are the point (Table IV reuses Table I's runs);
        // within one table two cells of the same settings are a mistyped set.
        if (auto [seen, first] = first_in_table.emplace(it->second, std::pair{r, c}); !first) {
          const auto [r0, c0] = seen->second;
          p.same_settings.push_back({ti, r, c, r0, c0});
        }
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

std::string experiment_command(const std::string& file, const std::string& out_dir,
                               const std::vector<std::string>& overrides) {
  std::string command = "crnn experiment " + file + " -o " + out_dir;
  for (const auto& s : overrides) command += " --set " + s;
  return command;
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

std::map<size_t, std::string> stale_runs(const ExperimentPlan& plan, const std::vector<size_t>& jobs,
                                         const std::string& out_dir) {
  std::map<size_t, std::string> out;
  std::map<std::string, std::string> current;  // manifest checksums now, read once each
  for (size_t job : jobs) {
    const auto& j = plan.jobs.at(job);
    const auto& cell = plan.cells[j.cell];
    auto why = manifest_changed_since((fs::path(out_dir) / cell.dir / fmt::format("seed_{}", j.seed)).string(),
                                      cell.config.data, &current);
    if (!why.empty()) out.emplace(job, std::move(why));
  }
  return out;
}

void refuse_stale_runs(const ExperimentPlan& plan, const std::vector<size_t>& jobs, const std::string& out_dir) {
  std::vector<std::string> stale;
  for (auto& [job, why] : stale_runs(plan, jobs, out_dir)) stale.push_back(why);
  if (stale.empty()) return;
  throw ConfigError(fmt::format(
      "{} finished run(s) in {} were trained on another version of their manifest:\n  {}{}\nMove them away (or use "
      "another output directory) to train them again on the manifest as it is, or restore the manifest",
      stale.size(), out_dir, fmt::join(stale.begin(), stale.begin() + std::min<size_t>(stale.size(), 3), "\n  "),
      stale.size() > 3 ? fmt::format("\n  and {} more", stale.size() - 3) : ""));
}

}  // namespace crnn::train

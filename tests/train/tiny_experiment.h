#pragma once
// A tiny experiment file over the tiny corpus (tiny_corpus.h), for the
// experiment tests of the library and of the command.
#include <fmt/core.h>

#include <array>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "crnn/train/experiment_runner.h"
#include "crnn/util/file_io.h"

#include "support/test_support.h"
#include "train/tiny_corpus.h"

namespace crnn::test {
namespace fs = std::filesystem;

inline size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

/// One table: two front-end variants (rows) × the tiny task (one column).
inline std::string tiny_experiment(int seeds, const std::string& extra = "") {
  return fmt::format(R"(title = "tiny"
[[table]]
id = "t1"
title = "Tiny table"
seeds = {}
row_average = true
  [[table.column]]
  name = "trend"
  config = "tiny.toml"
  [[table.row]]
  name = "cell, last"
  set = ["model.front_end.*.source=cell"]
  [[table.row]]
  name = "hidden, last"
  set = ["model.front_end.*.source=hidden"]
  [[table.group]]
  name = "both"
  rows = ["cell, last", "hidden, last"]
{})",
                     seeds, extra);
}

/// The tiny corpus in dir, its run config (tiny.toml, max_epochs epochs) and
/// tiny_experiment(seeds) over it (exp.toml).
struct TinyExperiment {
  TinyCorpus corpus;
  std::string path;  ///< exp.toml
};
inline TinyExperiment write_tiny_experiment(TempDir& dir, int max_epochs, int seeds) {
  auto c = make_tiny_corpus(dir);
  dir.write("tiny.toml", tiny_config(c, max_epochs));
  return {c, dir.write("exp.toml", tiny_experiment(seeds))};
}

/// Seed 1 of both rows of the tiny experiment trained in `out`; row `r`'s
/// summary.json then claims `wall_seconds[r]` (negative: left as trained).
inline void train_seed_1(TempDir& dir, const std::string& out, std::array<double, 2> wall_seconds) {
  std::ostringstream log;
  const auto seed1 = train::Experiment::from_file(dir.write("one.toml", tiny_experiment(1)));
  ASSERT_EQ(train::run_experiment(seed1, out, {}, log).trained, 2);
  const auto p = train::plan_experiment(seed1, {});
  for (size_t r = 0; r < 2; ++r) {
    if (wall_seconds[r] < 0) continue;
    const auto file = fmt::format("{}/{}/seed_1/summary.json", out, p.cells[p.grid[0][r][0]].dir);
    auto s = nlohmann::json::parse(crnn::read_text_file(file));
    s["wall_seconds"] = wall_seconds[r];
    dir.write(fs::relative(file, dir.path()).string(), s.dump(2));
  }
}

}  // namespace crnn::test

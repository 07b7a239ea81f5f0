#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "crnn/data/manifest.h"
#include "crnn/train/experiment.h"
#include "crnn/train/experiment_results.h"
#include "crnn/train/experiment_runner.h"
#include "crnn/train/repeat.h"
#include "crnn/train/run_data.h"
#include "crnn/train/run_files.h"
#include "crnn/util/progress.h"
#include "train/tiny_corpus.h"
#include "train/tiny_experiment.h"

using namespace crnn;
namespace fs = std::filesystem;

namespace {

using test::count;
using test::tiny_experiment;
using test::write_tiny_experiment;

std::string error_of(const std::string& text, const std::string& source) {
  try {
    train::Experiment::parse(text, source);
  } catch (const train::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Experiment, ParseErrorsNameTheFileAndKey) {
  const std::string src = "exp.toml";
  EXPECT_NE(error_of("title = 1\n[[table]]\n", src).find("exp.toml: title: expected a string"), std::string::npos);
  EXPECT_NE(error_of("colour = 'x'\n", src).find("exp.toml: colour: unknown key"), std::string::npos);
  EXPECT_NE(error_of("title = 'x'\n", src).find("table: no tables"), std::string::npos);
  auto e = error_of(tiny_experiment(2, "  [[table.row]]\n  name = \"cell, last\"\n"), src);
  EXPECT_NE(e.find("table.0.row.2.name: 'cell, last' is used twice"), std::string::npos) << e;
  e = error_of(tiny_experiment(2, "  [[table.group]]\n  name = \"g\"\n  rows = [\"nope\"]\n"), src);
  EXPECT_NE(e.find("no row named 'nope'"), std::string::npos) << e;
  e = error_of("[[table]]\nid = 'a'\n[[table.column]]\nname = 'c'\n[[table.row]]\nname = 'r'\n", src);
  EXPECT_NE(e.find("cell (r, c) has no config"), std::string::npos) << e;
  e = error_of("[[table]]\nid = 'a b'\n", src);
  EXPECT_NE(e.find("table.0.id: use letters"), std::string::npos) << e;
  for (const char* seeds : {"0", "1001", "9223372036854775807"}) {
    e = error_of(std::string("[[table]]\nid = 'a'\nseeds = ") + seeds + "\n", src);
    EXPECT_NE(e.find("table.0.seeds: expected an integer in 1..1000"), std::string::npos) << e;
  }
  EXPECT_NE(error_of("[[table]\n", src).find("exp.toml:1:"), std::string::npos);
  // Keys inside a table, row or column are named with their full path (these
  // once recursed forever while building the name and crashed).
  e = error_of("[[table]]\nid = 'a'\nbogus = 1\n", src);
  EXPECT_NE(e.find("exp.toml: table.0.bogus: unknown key"), std::string::npos) << e;
  e = error_of("[[table]]\ntitle = 'no id'\n", src);
  EXPECT_NE(e.find("table.0.id: required"), std::string::npos) << e;
  e = error_of("[[table]]\nid = 'a'\n[[table.row]]\nname = 'r'\n[[table.column]]\nname = 3\n", src);
  EXPECT_NE(e.find("table.0.column.0.name: expected a string"), std::string::npos) << e;
  e = error_of("[[table]]\nid = 'a'\n[[table.row]]\nname = 'r'\nset = 'data.task=x'\n", src);
  EXPECT_NE(e.find("table.0.row.0.set: expected an array of strings"), std::string::npos) << e;
  e = error_of("[[table]]\nid = 'a'\nrow = 1\n", src);
  EXPECT_NE(e.find("table.0.row: expected an array of tables ([[table.0.row]])"), std::string::npos) << e;
}

// Equal resolved configs share one cell (the seed and thread count do not
// matter); any changed key gives a new one. Jobs are seed-major, and shards
// partition them.
TEST(Experiment, PlanSharesEqualCellsAndOrdersJobsBySeed) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  dir.write("tiny.toml", test::tiny_config(c, 2));
  // Table t2 asks for t1's "cell, last" cell again (same keys, another thread
  // count) with more seeds, plus a cell with another window. (A train.seed in a
  // set is an error: SameSettingsTwiceInOneTableAreNamedAndSeedSetsRefused.)
  const std::string t2 = R"(
[[table]]
id = "t2"
seeds = 3
  [[table.column]]
  name = "trend"
  config = "tiny.toml"
  set = ["train.threads=1"]
  [[table.row]]
  name = "same as t1 cell"
  set = ["model.front_end.*.source=cell"]
  [[table.row]]
  name = "wider window"
  set = ["model.front_end.*.window=4"]
)";
  const auto path = dir.write("exp.toml", tiny_experiment(2, t2));
  auto e = train::Experiment::from_file(path);
  auto p = train::plan_experiment(e, {});
  ASSERT_EQ(p.cells.size(), 3u);  // cell-last (shared), hidden-last, window 4
  EXPECT_EQ(p.grid[0][0][0], p.grid[1][0][0]);
  EXPECT_NE(p.grid[0][1][0], p.grid[1][1][0]);
  EXPECT_EQ(p.cells[p.grid[0][0][0]].seeds, 3);  // the most any table asks
  EXPECT_EQ(p.cells[p.grid[0][1][0]].seeds, 2);
  EXPECT_TRUE(std::regex_match(p.cells[0].dir, std::regex("runs/trend-custom-[0-9a-f]{12}")));
  ASSERT_EQ(p.jobs.size(), 3u + 2 + 3);
  for (size_t i = 1; i < p.jobs.size(); ++i) EXPECT_LE(p.jobs[i - 1].seed, p.jobs[i].seed);

  // --table restricts the plan; a bad table id or shard is an error.
  train::ExperimentOptions only_t1;
  only_t1.tables = {"t1"};
  EXPECT_EQ(train::plan_experiment(e, only_t1).jobs.size(), 4u);
  only_t1.tables = {"t9"};
  EXPECT_THROW(train::plan_experiment(e, only_t1), train::ConfigError);
  train::ExperimentOptions bad_shard;
  bad_shard.shard = 2;
  bad_shard.shards = 2;
  EXPECT_THROW(train::plan_experiment(e, bad_shard), train::ConfigError);

  // A broken cell names its table, row and column.
  train::ExperimentOptions broken;
  broken.overrides = {"train.lr=-1"};
  try {
    train::plan_experiment(e, broken);
    FAIL();
  } catch (const train::ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("t1 · cell, last · trend"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("train.lr"), std::string::npos) << err.what();
  }
  // So does a cell whose config path names a directory.
  std::string text = tiny_experiment(2);
  const std::string tiny_config = "config = \"tiny.toml\"";
  text.replace(text.find(tiny_config), tiny_config.size(), "config = \".\"");
  try {
    train::plan_experiment(train::Experiment::parse(text, dir.file("dot.toml")), {});
    FAIL();
  } catch (const train::ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find(dir.file("dot.toml") + ": t1 · cell, last · trend: "), std::string::npos)
        << err.what();
    EXPECT_NE(std::string(err.what()).find("is a directory, not a file"), std::string::npos) << err.what();
  }
}

// End to end on the tiny corpus, in two shards: every run trains once, the
// table's numbers are the mean and sample std of the runs' own summary.json
// files, and a second call trains nothing.
TEST(Experiment, TwoShardsTrainEveryRunOnceAndTheTableAggregatesThem) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 2, 2).path);
  const std::string out = dir.file("out");
  std::ostringstream log;
  int64_t trained = 0;
  for (int64_t k = 0; k < 2; ++k) {
    train::ExperimentOptions o;
    o.shard = k;
    o.shards = 2;
    auto r = train::run_experiment(e, out, o, log);
    EXPECT_TRUE(r.failed.empty());
    trained += r.trained;
  }
  EXPECT_EQ(trained, 4);
  auto again = train::run_experiment(e, out, {}, log);
  EXPECT_EQ(again.trained, 0);
  EXPECT_EQ(again.skipped, 4);

  auto p = train::plan_experiment(e, {});
  // A damaged summary.json is not a finished run: the run resumes (no epochs left)
  // and writes the same summary again.
  const auto damaged = fmt::format("{}/{}/seed_2/summary.json", out, p.cells[p.grid[0][0][0]].dir);
  const auto intact = crnn::read_text_file(damaged);
  dir.write(fs::relative(damaged, dir.path()).string(), intact.substr(0, intact.size() / 2));
  auto repaired = train::run_experiment(e, out, {}, log);
  EXPECT_EQ(repaired.trained, 1);
  EXPECT_EQ(repaired.skipped, 3);
  EXPECT_NE(log.str().find("summary.json is damaged; the run resumes"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(crnn::read_text_file(damaged))["test_ua_recall"],
            nlohmann::json::parse(intact)["test_ua_recall"]);
  auto results = nlohmann::json::parse(crnn::read_text_file(out + "/results.json"));
  EXPECT_EQ(results["finished_runs"], 4);
  std::vector<double> row_means;
  std::vector<std::string> by_seed;
  for (size_t r = 0; r < 2; ++r) {
    std::vector<double> ua, loss_fraction;
    std::vector<std::string> mark;
    for (int seed = 1; seed <= 2; ++seed) {
      auto s = nlohmann::json::parse(crnn::read_text_file(
          fmt::format("{}/{}/seed_{}/summary.json", out, p.cells[p.grid[0][r][0]].dir, seed)));
      ua.push_back(s["test_ua_recall"].get<double>());
      // † marks a run whose selected model is its first epoch's.
      mark.push_back(s["best_epoch"] == 1 && s["epochs_run"] > 1 ? "†" : "");
      // The lowest training loss over the run's epochs, as a fraction of ln 2
      // (two classes: a uniform prediction's loss).
      double lowest = 1e300;
      for (const auto& m : train::read_metrics_csv(
               fmt::format("{}/{}/seed_{}/metrics.csv", out, p.cells[p.grid[0][r][0]].dir, seed)))
        lowest = std::min(lowest, m.train_loss);
      loss_fraction.push_back(lowest / std::log(2.0));
    }
    const double mean = (ua[0] + ua[1]) / 2;
    const double sd = std::abs(ua[0] - ua[1]) / std::sqrt(2.0);
    const auto& cell = results["tables"][0]["cells"][r][0];
    EXPECT_NEAR(cell["test_ua_recall_mean"].get<double>(), mean, 1e-12);
    EXPECT_NEAR(cell["test_ua_recall_std"].get<double>(), sd, 1e-12);
    row_means.push_back(mean);
    by_seed.push_back(fmt::format("| 2/2 | 1: {:.1f}{}, 2: {:.1f}{} |", 100 * ua[0], mark[0], 100 * ua[1], mark[1]));
    by_seed.push_back(fmt::format("| 1: {:.2f}, 2: {:.2f} |", loss_fraction[0], loss_fraction[1]));
  }
  const std::string md = crnn::read_text_file(out + "/results.md");
  // The protocol table lists every seed's test UA recall.
  for (const auto& b : by_seed) EXPECT_NE(md.find(b), std::string::npos) << b << "\n" << md;
  EXPECT_NE(md.find("Finished runs: **4 of 4**"), std::string::npos) << md;
  // The group row holds the average of the two rows' means.
  EXPECT_NE(md.find(fmt::format("| *both* | *{:.2f}* |", 50 * (row_means[0] + row_means[1]))), std::string::npos)
      << md;
  EXPECT_NE(md.find("![Tiny table](t1.svg)"), std::string::npos);
  EXPECT_NE(md.find("| *chance (1 / classes)* | *50.00* | |"), std::string::npos) << md;  // up / down
  const std::string svg = crnn::read_text_file(out + "/t1.svg");
  EXPECT_EQ(count(svg, "class=\"bar\""), 2u);
  EXPECT_EQ(count(svg, "class=\"reference\""), 1u);
  EXPECT_TRUE(fs::exists(out + "/" + p.cells[0].dir + "/repeat.json"));

  // A run whose training loss stays near ln 2 (uniform prediction) shows a
  // fraction near 1, and the JSON holds the lowest loss itself.
  {
    const std::string m1 = fmt::format("{}/{}/seed_1/metrics.csv", out, p.cells[p.grid[0][0][0]].dir);
    const auto rows = train::read_metrics_csv(m1);
    ASSERT_FALSE(rows.empty());
    const std::string original = crnn::read_text_file(m1);
    std::ofstream flat(m1, std::ios::trunc);
    flat << "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n";
    for (const auto& m : rows)
      flat << fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", m.epoch, 0.70 - 0.001 * m.epoch,
                          m.val_loss, m.val_ua_recall, m.val_wa, m.epoch_seconds, m.frames_per_s);
    flat.close();
    const double lowest = 0.70 - 0.001 * static_cast<double>(rows.back().epoch);
    train::ExperimentOptions results_only;
    results_only.train = false;
    train::run_experiment(e, out, results_only, log);
    const std::string flat_md = crnn::read_text_file(out + "/results.md");
    EXPECT_NE(flat_md.find(fmt::format("| 1: {:.2f}, 2: ", lowest / std::log(2.0))), std::string::npos) << flat_md;
    EXPECT_NE(flat_md.find("Lowest train loss / ln C: "), std::string::npos) << flat_md;
    auto flat_json = nlohmann::json::parse(crnn::read_text_file(out + "/results.json"));
    EXPECT_NEAR(flat_json["tables"][0]["cells"][0][0]["lowest_train_loss"][0].get<double>(), lowest, 1e-9);
    std::ofstream(m1, std::ios::trunc) << original;
  }

  // Without row 2's runs the group's averages rest on one of their two cells, and say so.
  for (int seed = 1; seed <= 2; ++seed)
    fs::remove(fmt::format("{}/{}/seed_{}/summary.json", out, p.cells[p.grid[0][1][0]].dir, seed));
  const std::string repeat1 = fmt::format("{}/{}/repeat.json", out, p.cells[p.grid[0][0][0]].dir);
  const std::string trained_repeat1 = crnn::read_text_file(repeat1);
  std::ofstream(repeat1, std::ios::trunc) << "{\"runs\": []}\n";  // stale
  train::ExperimentOptions results_only;
  results_only.train = false;
  train::run_experiment(e, out, results_only, log);
  // --results-only rewrites the cells' repeat files from their finished runs too.
  EXPECT_EQ(crnn::read_text_file(repeat1), trained_repeat1);
  EXPECT_FALSE(fs::exists(fmt::format("{}/{}/repeat.json", out, p.cells[p.grid[0][1][0]].dir)));
  EXPECT_FALSE(fs::exists(fmt::format("{}/{}/repeat.md", out, p.cells[p.grid[0][1][0]].dir)));
  const std::string partial = crnn::read_text_file(out + "/results.md");
  const auto row1 = fmt::format("{:.2f}", 100 * row_means[0]);
  EXPECT_NE(partial.find("| *both* | *" + row1 + "* [1/2] | *" + row1 + "* [1/2] |"), std::string::npos) << partial;
  EXPECT_NE(partial.find("| hidden, last | — | — |"), std::string::npos) << partial;

  // The two unfinished runs have no finished run in their own cell; they are
  // estimated from the other row's runs (same task and model), less the epochs
  // their metrics.csv says they already trained (seed 2: none).
  {
    const std::string m2 = fmt::format("{}/{}/seed_2/metrics.csv", out, p.cells[p.grid[0][1][0]].dir);
    const std::string text = crnn::read_text_file(m2);
    std::ofstream(m2, std::ios::trunc) << text.substr(0, text.find('\n') + 1);  // the header alone
  }
  const auto pg = train::experiment_progress(e, p, out);
  EXPECT_EQ(pg.planned, 4);
  EXPECT_EQ(pg.finished, 2);
  EXPECT_EQ(pg.estimated_by_cell, 0);
  EXPECT_EQ(pg.estimated_by_model, 2);
  EXPECT_EQ(pg.unestimated, 0);
  double row1_wall = 0, expected = 0;
  for (int seed = 1; seed <= 2; ++seed)
    row1_wall += nlohmann::json::parse(crnn::read_text_file(fmt::format("{}/{}/seed_{}/summary.json", out,
                                                                         p.cells[p.grid[0][0][0]].dir, seed)))
                     ["wall_seconds"]
                         .get<double>() /
                 2;
  for (int seed = 1; seed <= 2; ++seed) {
    double done = 0;
    for (const auto& m : train::read_metrics_csv(
             fmt::format("{}/{}/seed_{}/metrics.csv", out, p.cells[p.grid[0][1][0]].dir, seed)))
      done += m.epoch_seconds;
    expected += std::max(0.0, row1_wall - done);
  }
  EXPECT_GE(expected, row1_wall);
  EXPECT_NEAR(pg.remaining_seconds, expected, 1e-9);
  EXPECT_EQ(train::eta_text(pg, 2), ", ETA " + format_duration(expected / 2));
  EXPECT_NE(partial.find("The 2 unfinished runs"), std::string::npos) << partial;
  // results.md's figure counts the unfinished runs whole: it must not change
  // with an interrupted run's epochs, which are never committed.
  EXPECT_NEAR(train::experiment_progress(e, p, out, /*count_trained_epochs=*/false).remaining_seconds, 2 * row1_wall,
              1e-9);
  EXPECT_NE(partial.find("need about " + format_duration(2 * row1_wall) + " more training time"), std::string::npos)
      << partial;
  // Without any finished run nothing can be estimated.
  for (int seed = 1; seed <= 2; ++seed)
    fs::remove(fmt::format("{}/{}/seed_{}/summary.json", out, p.cells[p.grid[0][0][0]].dir, seed));
  const auto none = train::experiment_progress(e, p, out);
  EXPECT_EQ(none.finished, 0);
  EXPECT_EQ(none.unestimated, 4);
  EXPECT_EQ(train::eta_text(none, 2), "");
}

// An experiment directory committed to git keeps its runs' text files but not
// their model files (*.pt) or worker logs (.gitignore; scripts/stage-finished-runs).
// A fresh clone holding only those files must skip every finished run and write
// the same tables: summary.json, not best.pt or last.pt, makes a run finished.
TEST(Experiment, FinishedRunsWithoutModelFilesAreSkippedAndGiveTheSameTables) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 1, 1).path);
  const fs::path out = dir.file("out"), clone = dir.file("clone");
  std::ostringstream log;
  auto first = train::run_experiment(e, out.string(), {}, log);
  ASSERT_EQ(first.trained, 2);
  int64_t copied = 0, left_out = 0;
  for (const auto& f : fs::recursive_directory_iterator(out)) {
    if (!f.is_regular_file()) continue;
    const auto rel = fs::relative(f.path(), out);
    if (f.path().extension() == ".pt" || *rel.begin() == "logs") {
      ++left_out;
      continue;
    }
    fs::create_directories((clone / rel).parent_path());
    fs::copy_file(f.path(), clone / rel);
    ++copied;
  }
  EXPECT_EQ(left_out, 4);  // best.pt and last.pt of each run
  EXPECT_GT(copied, 0);
  fs::remove(clone / "results.md");
  auto again = train::run_experiment(e, clone.string(), {}, log);
  EXPECT_EQ(again.trained, 0);
  EXPECT_EQ(again.skipped, 2);
  EXPECT_TRUE(again.failed.empty());
  auto tables = [](const std::string& md) { return md.substr(md.find("## ")); };
  EXPECT_EQ(tables(crnn::read_text_file((clone / "results.md").string())),
            tables(crnn::read_text_file((out / "results.md").string())));
}

// `folds = K` on a column: one column per cross-validation round, each with
// data.folds = K and its data.fold, so row_average gives the K-fold mean.
TEST(Experiment, AFoldsColumnExpandsIntoOneColumnPerRound) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  dir.write("tiny.toml", test::tiny_config(c, 1));
  auto text = [](const std::string& column_extra) {
    return fmt::format(R"(
[[table]]
id = "cv"
seeds = 1
row_average = true
  [[table.column]]
  name = "trend"
  config = "tiny.toml"
  {}
  [[table.row]]
  name = "cell"
  set = ["model.front_end.*.source=cell"]
)",
                       column_extra);
  };
  auto e = train::Experiment::parse(text("folds = 3"), dir.file("exp.toml"));
  const auto& cols = e.tables[0].columns;
  ASSERT_EQ(cols.size(), 3u);
  for (int f = 0; f < 3; ++f) {
    EXPECT_EQ(cols[f].name, fmt::format("trend, fold {}", f));
    EXPECT_EQ(cols[f].set, (std::vector<std::string>{"data.folds=3", fmt::format("data.fold={}", f)}));
  }
  const auto p = train::plan_experiment(e, {});
  ASSERT_EQ(p.cells.size(), 3u);
  for (int f = 0; f < 3; ++f) {
    const auto& cfg = p.cells[p.grid[0][0][f]].config;
    EXPECT_EQ(cfg.data.folds, 3);
    EXPECT_EQ(cfg.data.fold, f);
  }
  EXPECT_TRUE(p.same_settings.empty());
  EXPECT_TRUE(test::contains(error_of(text("folds = 2"), "exp.toml"), "table.0.column.0.folds: expected an integer in 3..100"));
  EXPECT_TRUE(test::contains(error_of(text("folds = 1.5"), "exp.toml"), "folds: expected an integer"));
  EXPECT_TRUE(test::contains(error_of(text("folds = 3\n  set = [\"data.fold=1\"]"), "exp.toml"),
                             "'data.fold=1': `folds` sets data.folds and data.fold for each round"));
  // The other axis or the command line setting the fold would make every round the same fold.
  const auto plan_error = [&](const std::string& toml, const std::vector<std::string>& sets) {
    train::ExperimentOptions o;
    o.overrides = sets;
    return test::error_of([&] { train::plan_experiment(train::Experiment::parse(toml, dir.file("exp.toml")), o); });
  };
  std::string row_fold = text("folds = 3");
  row_fold.replace(row_fold.find("source=cell\""), 12, "source=cell\", \"data.fold=2\"");
  EXPECT_TRUE(test::contains(plan_error(row_fold, {}), "cv · cell · trend, fold 0: 'data.fold=2': `folds` sets "
                                                       "data.folds and data.fold for each round"))
      << plan_error(row_fold, {});
  EXPECT_TRUE(test::contains(plan_error(text("folds = 3"), {"data.folds=4"}), "'data.folds=4' (--set): `folds` sets"));
  std::string both = text("folds = 3");
  both.replace(both.find("  name = \"cell\""), 15, "  name = \"cell\"\n  folds = 3");
  EXPECT_TRUE(test::contains(plan_error(both, {}), "`folds` on both a row and a column of one table"))
      << plan_error(both, {});

  // Trained: results.md and results.json summarize the cross-validation. Each
  // utterance is tested in exactly one fold, so the pooled confusion counts
  // every manifest row once, and it is the sum of the folds' own confusions.
  std::ostringstream log;
  ASSERT_EQ(train::run_experiment(e, dir.file("out"), {}, log).trained, 3) << log.str();
  const std::string md = crnn::read_text_file(dir.file("out/results.md"));
  EXPECT_TRUE(test::contains(md, "**Cross-validation.** Every utterance is tested once, in its fold.")) << md;
  EXPECT_TRUE(test::contains(md, "| cell | trend | 3/3 | ")) << md;
  const auto js = nlohmann::json::parse(crnn::read_text_file(dir.file("out/results.json")));
  const auto& cv = js["tables"][0]["cross_validation"];
  ASSERT_EQ(cv.size(), 1u);
  EXPECT_EQ(cv[0]["row"], "cell");
  EXPECT_EQ(cv[0]["column"], "trend");
  EXPECT_EQ(cv[0]["folds_scored"], 3);
  EXPECT_EQ(cv[0]["pooled_seeds"], 1);
  std::vector<std::vector<int64_t>> sum;
  for (int f = 0; f < 3; ++f) {
    const auto e_f = train::read_eval_json(dir.file("out/" + p.cells[p.grid[0][0][f]].dir + "/seed_1/eval_test.json"));
    if (sum.empty()) sum.assign(e_f.confusion.size(), std::vector<int64_t>(e_f.confusion.size(), 0));
    for (size_t i = 0; i < sum.size(); ++i)
      for (size_t j = 0; j < sum.size(); ++j) sum[i][j] += e_f.confusion[i][j];
  }
  EXPECT_EQ(cv[0]["pooled_confusion"].get<std::vector<std::vector<int64_t>>>(), sum);
  int64_t pooled = 0, rows = 0;
  for (const auto& row : sum)
    for (auto v : row) pooled += v;
  std::ifstream manifest(c.manifest);
  for (std::string line; std::getline(manifest, line);) rows += !line.empty();
  EXPECT_EQ(pooled, rows - 1);  // every utterance once (the header is not one)

  // Folds on a row: one summary per column, named by the row's own name.
  const auto folded_rows = train::Experiment::parse(R"(
[[table]]
id = "cvr"
seeds = 1
  [[table.column]]
  name = "cell states"
  config = "tiny.toml"
  set = ["model.front_end.*.source=cell"]
  [[table.column]]
  name = "hidden states"
  config = "tiny.toml"
  set = ["model.front_end.*.source=hidden"]
  [[table.row]]
  name = "trend"
  folds = 3
)",
                                                    dir.file("rows.toml"));
  const std::string rows_md =
      train::write_experiment_results(folded_rows, train::plan_experiment(folded_rows, {}), dir.file("rows"), {});
  EXPECT_TRUE(test::contains(rows_md, "| trend | cell states | 0/3 | — | — | — |")) << rows_md;
  EXPECT_TRUE(test::contains(rows_md, "| trend | hidden states | 0/3 | — | — | — |")) << rows_md;
}

// Cells are shared across tables on purpose; two cells of one table with the
// same settings are a mistyped set: a plan warning and a note in results.md.
// A train.seed in a cell's sets would be replaced by seeds 1..N: refused.
TEST(Experiment, SameSettingsTwiceInOneTableAreNamedAndSeedSetsRefused) {
  test::TempDir dir;
  const auto t = write_tiny_experiment(dir, 1, 1);
  auto e = train::Experiment::parse(
      tiny_experiment(1, "  [[table.row]]\n  name = \"dup\"\n  set = [\"model.front_end.*.source = cell\"]\n"),
      dir.file("exp.toml"));
  const auto p = train::plan_experiment(e, {});
  const auto warnings = train::same_settings_warnings(e, p);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(test::contains(warnings[0], "t1 · dup · trend has the same settings as t1 · cell, last · trend"))
      << warnings[0];
  EXPECT_TRUE(train::plan_experiment(train::Experiment::from_file(t.path), {}).same_settings.empty());
  const std::string md = train::write_experiment_results(e, p, dir.file("out"), {});
  EXPECT_TRUE(test::contains(md, "**Cells with the same settings, showing the same runs:** dup · trend = cell, last · trend."))
      << md;

  auto seeded = train::Experiment::parse(
      tiny_experiment(1, "  [[table.row]]\n  name = \"s\"\n  set = [\"train.seed=42\"]\n"), dir.file("exp.toml"));
  try {
    train::plan_experiment(seeded, {});
    ADD_FAILURE() << "train.seed in a cell was accepted";
  } catch (const train::ConfigError& err) {
    EXPECT_TRUE(test::contains(err.what(), "t1 · s · trend: 'train.seed=42'")) << err.what();
    EXPECT_TRUE(test::contains(err.what(), "set the table's seeds instead of train.seed")) << err.what();
  }
  train::ExperimentOptions with_seed;
  with_seed.overrides = {"train.seed=3"};
  EXPECT_TRUE(test::contains(test::error_of([&] { train::plan_experiment(e, with_seed); }),
                             "'train.seed=3' (--set): an experiment trains seeds 1..seeds of every cell; drop the --set"));
  train::ExperimentOptions o;
  o.tables = {"t2"};
  try {
    train::plan_experiment(e, o);
    ADD_FAILURE() << "an unknown table id was accepted";
  } catch (const train::ConfigError& err) {
    EXPECT_TRUE(test::contains(err.what(), "no table with id 't2' (tables: t1)")) << err.what();
  }
}

// A finished run records its manifest's checksum; after the manifest changes
// (a label, a speaker, a split), the run is not skipped as a result of the new
// rows: training refuses to go on and names it, --plan marks it, and restoring
// the manifest makes it count again. repeat does the same.
TEST(Experiment, FinishedRunsOfAChangedManifestAreRefusedNotReused) {
  test::TempDir dir;
  const auto t = write_tiny_experiment(dir, 1, 1);
  auto e = train::Experiment::from_file(t.path);
  const auto out = dir.file("out");
  std::ostringstream log;
  ASSERT_EQ(train::run_experiment(e, out, {}, log).trained, 2);
  const auto p = train::plan_experiment(e, {});
  const auto summary = train::read_run_summary(fmt::format("{}/{}/seed_1/summary.json", out, p.cells[0].dir));
  const auto config = train::RunConfig::from_file(dir.file("tiny.toml"));
  EXPECT_EQ(summary.manifest_crc32, train::manifest_checksum(data::Manifest::read(t.corpus.manifest), config.data));
  EXPECT_TRUE(std::regex_match(summary.manifest_crc32, std::regex("[0-9a-f]{8}"))) << summary.manifest_crc32;
  EXPECT_EQ(train::run_experiment(e, out, {}, log).skipped, 2);  // unchanged: skipped as before

  const std::string original = crnn::read_text_file(t.corpus.manifest);
  // Other audio paths (a corpus moved), CRLF line ends and reversed rows are the same rows.
  {
    std::vector<std::string> lines;
    std::istringstream in(original);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::string moved = lines[0] + "\r\n";
    for (size_t i = lines.size() - 1; i >= 1; --i) {
      std::string l = lines[i];
      l.replace(l.find("audio/"), 6, "/elsewhere/audio/");
      moved += l + "\r\n";
    }
    dir.write("tiny.csv", moved);
    EXPECT_TRUE(train::stale_runs(p, {0, 1}, out).empty());
  }
  std::string relabelled = original;
  const std::string row = "s0_c0_0,audio/s0_c0_0.wav,spk0,up";
  ASSERT_NE(relabelled.find(row), std::string::npos);
  relabelled.replace(relabelled.find(row), row.size(), "s0_c0_0,audio/s0_c0_0.wav,spk0,down");
  dir.write("tiny.csv", relabelled);
  const std::vector<size_t> all = {0, 1};
  EXPECT_EQ(train::stale_runs(p, all, out).size(), 2u);
  // Cells whose manifest path is relative to another working directory (not
  // found from here) are checked against the manifest their runs recorded
  // (config.toml holds it absolute), not passed as unchanged.
  auto elsewhere = p;
  for (auto& cell : elsewhere.cells) cell.config.data.manifest = "tiny.csv";
  ASSERT_FALSE(fs::exists("tiny.csv"));
  EXPECT_EQ(train::stale_runs(elsewhere, all, out).size(), 2u);
  try {
    train::run_experiment(e, out, {}, log);
    ADD_FAILURE() << "finished runs of the old manifest were reused";
  } catch (const train::ConfigError& err) {
    const std::string m = err.what();
    EXPECT_TRUE(test::contains(m, "2 finished run(s)")) << m;
    EXPECT_TRUE(test::contains(m, "was trained on other rows of " + t.corpus.manifest + " (CRC-32 ")) << m;
    EXPECT_TRUE(test::contains(m, "Move them away")) << m;
  }
  // The tables can still be written from what is there.
  train::ExperimentOptions results_only;
  results_only.train = false;
  EXPECT_NO_THROW(train::run_experiment(e, out, results_only, log));
  // repeat refuses a finished seed of the old manifest too.
  dir.write("tiny.csv", original);
  ASSERT_EQ(train::repeat_runs(config, dir.file("rep"), 1, 1, log).runs.size(), 1u);
  EXPECT_TRUE(train::stale_runs(p, all, out).empty());
  EXPECT_EQ(train::run_experiment(e, out, {}, log).skipped, 2);  // restored: counts again
  dir.write("tiny.csv", relabelled);
  EXPECT_THROW(train::repeat_runs(config, dir.file("rep"), 1, 1, log), train::ConfigError);
}

// --results-only with settings none of the finished runs were trained with (a
// forgotten --set) is refused instead of replacing the tables with dashes.
TEST(Experiment, ResultsOnlyWithOtherSettingsThanTheRunsLeavesTheTables) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 1, 1).path);
  const auto out = dir.file("out");
  std::ostringstream log;
  ASSERT_EQ(train::run_experiment(e, out, {}, log).trained, 2);
  const std::string md = crnn::read_text_file(out + "/results.md");
  train::ExperimentOptions o;
  o.train = false;
  o.overrides = {"train.lr=0.5"};
  try {
    train::run_experiment(e, out, o, log);
    ADD_FAILURE() << "results of no finished run replaced the tables";
  } catch (const train::ConfigError& err) {
    EXPECT_TRUE(test::contains(err.what(), "none of the 2 planned runs has finished there, but 2 cell(s) of other "
                                           "settings have"))
        << err.what();
  }
  EXPECT_EQ(crnn::read_text_file(out + "/results.md"), md);
  o.overrides.clear();
  EXPECT_NO_THROW(train::run_experiment(e, out, o, log));
  // A directory without finished runs of any settings gets its (empty) tables.
  o.overrides = {"train.lr=0.5"};
  test::TempDir empty;
  EXPECT_NO_THROW(train::run_experiment(e, empty.file("out"), o, log));
}

using test::train_seed_1;

// A finished run without a test score (its config has no test split) is not in
// its cell's mean: the cell's count is that of the scores, and a cell with no
// score says so instead of printing "nan".
TEST(Experiment, RunsWithoutATestScoreAreCountedOutOfTheirCell) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 1, 2).path);
  const auto out = dir.file("out");
  train_seed_1(dir, out, {-1, -1});
  const auto p = train::plan_experiment(e, {});
  const auto file = fmt::format("{}/{}/seed_1/summary.json", out, p.cells[p.grid[0][1][0]].dir);
  auto s = nlohmann::json::parse(crnn::read_text_file(file));
  s["test_ua_recall"] = nullptr;
  s["test_wa"] = nullptr;
  dir.write(fs::relative(file, dir.path()).string(), s.dump(2));
  const std::string md = train::write_experiment_results(e, p, out, {});
  EXPECT_FALSE(test::contains(md, "nan")) << md;
  EXPECT_TRUE(test::contains(md, "| hidden, last | — (no test split) |")) << md;
  EXPECT_TRUE(test::contains(md, "| hidden, last | trend | 1/2 | 1: —")) << md;
  // The other row keeps its one score, marked [1] of 2 seeds.
  EXPECT_TRUE(std::regex_search(md, std::regex(R"(\| cell, last \| \*\*[0-9.]+\*\* \[1\] \|)"))) << md;
}

// A cell whose test split lacks a class is marked: its UA recall averages the
// classes present, so the chance row does not hold for it.
TEST(Experiment, ACellWhoseTestSplitLacksAClassIsMarked) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 1, 1).path);
  const auto out = dir.file("out");
  train_seed_1(dir, out, {-1, -1});
  const auto p = train::plan_experiment(e, {});
  std::string md = train::write_experiment_results(e, p, out, {});
  EXPECT_FALSE(test::contains(md, "‡")) << md;
  // As eval_test.json records a class absent from the split: its recall null.
  const auto file = fmt::format("{}/{}/seed_1/eval_test.json", out, p.cells[p.grid[0][1][0]].dir);
  auto j = nlohmann::json::parse(crnn::read_text_file(file));
  ASSERT_EQ(j["labels"], nlohmann::json({"down", "up"}));
  j["per_class_recall"][0] = nullptr;
  dir.write(fs::relative(file, dir.path()).string(), j.dump(2));
  md = train::write_experiment_results(e, p, out, {});
  EXPECT_TRUE(std::regex_search(md, std::regex(R"(\| hidden, last \| (\*\*)?[0-9.]+(\*\*)?‡ \|)"))) << md;
  EXPECT_TRUE(test::contains(md, "‡ hidden, last · trend: the test split has no down; UA recall averages the 1 "
                                 "class(es) present, so predicting one class always scores 100.00, not the chance "
                                 "row's 50.00."))
      << md;
  EXPECT_EQ(count(md, "‡"), 2u);  // the cell and its footnote; the other row is complete
}

// With a time limit a run starts only while time is left and its estimate (the
// mean wall time of its cell's or kind's finished runs) fits in it or it has no
// estimate; a later run that fits is started in its place.
TEST(Experiment, TimeLimitStartsOnlyRunsExpectedToFinishInTime) {
  test::TempDir dir;
  auto e = train::Experiment::from_file(write_tiny_experiment(dir, 1, 2).path);
  std::ostringstream log;
  // Time is up at once: nothing starts, not even the runs without an estimate.
  train::ExperimentOptions none_left;
  none_left.time_limit_seconds = 1e-9;
  auto r = train::run_experiment(e, dir.file("a"), none_left, log);
  EXPECT_EQ(r.trained, 0);
  EXPECT_EQ(r.not_started, 4);
  EXPECT_NE(log.str().find("its estimate exceeds the 00:00 left of the time limit"), std::string::npos) << log.str();
  // With time left, the first run (no estimate yet) starts, and the others,
  // estimated from it in well under 10^6 s, follow.
  train::ExperimentOptions ample;
  ample.time_limit_seconds = 1e6;
  r = train::run_experiment(e, dir.file("a"), ample, log);
  EXPECT_EQ(r.trained, 4);
  EXPECT_EQ(r.not_started, 0);

  // Row 1's seed 1 claims 10^6 s. With 1000 s left, row 1's seed 2 (estimated
  // 10^6 s from its cell) is passed over and row 2's seed 2, after it in plan
  // order, is trained.
  const auto out = dir.file("b");
  train_seed_1(dir, out, {1e6, -1});
  const auto p = train::plan_experiment(e, {});
  train::ExperimentOptions hour;
  hour.time_limit_seconds = 1000;
  r = train::run_experiment(e, out, hour, log);
  EXPECT_EQ(r.skipped, 2);
  EXPECT_EQ(r.trained, 1);
  EXPECT_EQ(r.not_started, 1);
  EXPECT_FALSE(fs::exists(fmt::format("{}/{}/seed_2/summary.json", out, p.cells[p.grid[0][0][0]].dir)));
  EXPECT_TRUE(fs::exists(fmt::format("{}/{}/seed_2/summary.json", out, p.cells[p.grid[0][1][0]].dir)));
}

TEST(Experiment, PaperExperimentSharesTableIVCellsWithTablesIToIII) {
  auto e = train::Experiment::from_file(CRNN_SOURCE_DIR "/configs/experiments/paper.toml");
  auto p = train::plan_experiment(e, {});
  ASSERT_EQ(e.tables.size(), 4u);
  // Tables II and III: 4 models × 2 feature sets each.
  EXPECT_EQ(p.cells.size(), 8u + 8 + 8 + 24 - 4);
  EXPECT_EQ(p.jobs.size(), 5u * (8 + 8 + 8) + 3u * (24 - 4));
  const auto& g = p.grid;
  EXPECT_EQ(g[3][5][0], g[0][2][0]);  // cell states, last × emotion2 = CLSTM × emotion2
  EXPECT_EQ(g[3][5][1], g[0][2][1]);  // … × emotion8
  EXPECT_EQ(g[3][4][2], g[2][2][0]);  // cell states, max × age3 = Table III CLSTM
  EXPECT_EQ(g[3][4][3], g[1][2][0]);  // cell states, max × gender3 = Table II CLSTM
  EXPECT_NE(g[3][3][0], g[0][2][0]);  // cell states, mean is another model
  // Tables II and III: the eGeMAPS column is the log mel model on the eGeMAPS store.
  for (int t : {1, 2})
    for (size_t r = 0; r < 4; ++r) {
      const auto& mel = p.cells[g[t][r][0]].config;
      const auto& egemaps = p.cells[g[t][r][1]].config;
      EXPECT_EQ(mel.data.features, "data/speechocean762.h5");
      EXPECT_EQ(egemaps.data.features, "data/speechocean762-egemaps.h5");
      EXPECT_EQ(egemaps.model.preset, mel.model.preset);
      EXPECT_EQ(egemaps.data.task, mel.data.task);
    }
  // Every cell keeps the paper's protocol (per-speaker normalization, Adam 0.002,
  // patience 12) in the class-neutral batch order (issue 31).
  for (const auto& c : p.cells) {
    EXPECT_EQ(c.config.data.normalization, "speaker") << c.label;
    EXPECT_EQ(c.config.train.lr, 0.002) << c.label;
    EXPECT_EQ(c.config.train.patience, 12) << c.label;
    EXPECT_EQ(c.config.data.batches_per_bucket, 1) << c.label;
  }
  // The history keeps the old order on every cell.
  const auto old = train::plan_experiment(
      train::Experiment::from_file(CRNN_SOURCE_DIR "/configs/experiments/paper-batches8.toml"), {});
  for (const auto& c : old.cells) EXPECT_EQ(c.config.data.batches_per_bucket, 8) << c.label;
}

namespace {

// Copies the committed runs of `committed`, writes the experiment's tables
// and charts from them, and expects each byte-identical to the committed one.
void expect_tables_regenerate_identically(const train::Experiment& e, const train::ExperimentPlan& p,
                                          const train::ExperimentOptions& o, const fs::path& committed) {
  test::TempDir dir;
  fs::copy(committed / "runs", dir.path() / "runs", fs::copy_options::recursive);
  train::write_experiment_results(e, p, dir.path().string(), o);
  for (const char* name : {"results.md", "results.json", "table1.svg", "table2.svg", "table3.svg", "table4.svg"})
    EXPECT_EQ(crnn::read_text_file((dir.path() / name).string()), crnn::read_text_file((committed / name).string()))
        << name << " no longer regenerates byte-identical from the committed runs";
  // Each cell's repeat files hold its committed runs (`--results-only` rewrites them).
  for (size_t c = 0; c < p.cells.size(); ++c) {
    const auto s = train::write_cell_repeat_files(p, c, dir.path().string());
    if (s.runs.empty()) continue;
    for (const char* name : {"repeat.json", "repeat.md"})
      EXPECT_EQ(crnn::read_text_file((dir.path() / p.cells[c].dir / name).string()),
                crnn::read_text_file((committed / p.cells[c].dir / name).string()))
          << p.cells[c].dir << "/" << name << " is not that of the committed runs";
  }
}

}  // namespace

// results/paper, being retrained: every committed run belongs to a planned
// cell of configs/experiments/paper.toml (nothing orphaned by a re-keyed
// config), and the tables regenerate byte-identical from the committed runs.
TEST(Experiment, CommittedPaperRunsBelongToPlannedCellsAndRegenerateIdentically) {
  const fs::path committed = CRNN_SOURCE_DIR "/results/paper";
  auto e = train::Experiment::from_file(CRNN_SOURCE_DIR "/configs/experiments/paper.toml");
  e.source = "configs/experiments/paper.toml";
  train::ExperimentOptions o;
  o.command = "crnn experiment configs/experiments/paper.toml -o results/paper";
  const auto p = train::plan_experiment(e, o);
  std::set<std::string> planned;
  for (const auto& c : p.cells) planned.insert(fs::path(c.dir).filename().string());
  size_t runs = 0;
  for (const auto& d : fs::directory_iterator(committed / "runs")) {
    EXPECT_TRUE(planned.count(d.path().filename().string())) << d.path() << " is no planned cell";
    for (const auto& s : fs::directory_iterator(d.path())) runs += fs::exists(s.path() / "summary.json");
  }
  size_t finished = 0;
  for (size_t j = 0; j < p.jobs.size(); ++j) finished += train::job_finished(p, j, committed.string());
  EXPECT_EQ(finished, runs);
  EXPECT_GE(finished, 20u);  // the new-order cells shared with results/batch-order

  expect_tables_regenerate_identically(e, p, o, committed);
}

// The first paper results (history: the old batch order) stay what they are
// when the code around them changes: every planned cell of
// configs/experiments/paper-batches8.toml names a committed directory (no key
// re-keyed a run), all 140 runs count as finished, and the tables regenerate
// byte-identical from the committed run files.
TEST(Experiment, CommittedPaperResultsKeepTheirCellsAndRegenerateIdentically) {
  const fs::path committed = CRNN_SOURCE_DIR "/results/paper-batches8";
  auto e = train::Experiment::from_file(CRNN_SOURCE_DIR "/configs/experiments/paper-batches8.toml");
  e.source = "configs/experiments/paper-batches8.toml";  // as `crnn experiment` was run from the repository root
  train::ExperimentOptions o;
  o.command = "crnn experiment configs/experiments/paper-batches8.toml -o results/paper-batches8";
  const auto p = train::plan_experiment(e, o);
  ASSERT_EQ(p.cells.size(), 36u);
  for (const auto& c : p.cells) EXPECT_TRUE(fs::is_directory(committed / c.dir)) << c.label << ": " << c.dir;
  size_t finished = 0;
  for (size_t j = 0; j < p.jobs.size(); ++j) finished += train::job_finished(p, j, committed.string());
  EXPECT_EQ(finished, 140u);

  expect_tables_regenerate_identically(e, p, o, committed);
}

// No chart text is cut: in the results charts of the paper experiment (the
// longest table titles, row and column names the project has), every text
// element's extent — estimated at 0.6 em per character, DejaVu Sans's average
// advance — lies inside the SVG canvas.
TEST(Experiment, PaperChartsCutNoText) {
 for (const std::string name : {"paper", "paper-batches8"}) {
  SCOPED_TRACE(name);
  auto e = train::Experiment::from_file(CRNN_SOURCE_DIR "/configs/experiments/" + name + ".toml");
  const auto p = train::plan_experiment(e, {});
  test::TempDir dir;
  fs::copy(fs::path(CRNN_SOURCE_DIR "/results/" + name + "/runs"), dir.path() / "runs", fs::copy_options::recursive);
  train::write_experiment_results(e, p, dir.path().string(), {});
  const std::regex canvas(R"svg(<svg [^>]*width="([0-9.]+)" height="([0-9.]+)")svg");
  const std::regex text(R"svg(<text x="([0-9.]+)" y="([0-9.]+)"([^>]*)>([^<]*)</text>)svg");
  for (const char* name : {"table1.svg", "table2.svg", "table3.svg", "table4.svg"}) {
    const std::string svg = crnn::read_text_file((dir.path() / name).string());
    std::smatch m;
    ASSERT_TRUE(std::regex_search(svg, m, canvas)) << name;
    const double width = std::stod(m[1]), height = std::stod(m[2]);
    size_t texts = 0;
    for (std::sregex_iterator it(svg.begin(), svg.end(), text), end; it != end; ++it, ++texts) {
      const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
      const std::string attrs = (*it)[3], content = (*it)[4];
      if (attrs.find("rotate") != std::string::npos) continue;  // the y axis title
      double size = 12;
      std::smatch fs_match;
      if (std::regex_search(attrs, fs_match, std::regex("font-size=\"([0-9.]+)\""))) size = std::stod(fs_match[1]);
      size_t chars = 0;
      for (unsigned char ch : content) chars += (ch & 0xC0) != 0x80;
      const double w = 0.6 * size * static_cast<double>(chars);
      double x0 = x, x1 = x + w;
      if (attrs.find("text-anchor=\"middle\"") != std::string::npos) x0 = x - w / 2, x1 = x + w / 2;
      if (attrs.find("text-anchor=\"end\"") != std::string::npos) x0 = x - w, x1 = x;
      EXPECT_GE(x0, 0.0) << name << ": '" << content << "' starts left of the canvas";
      EXPECT_LE(x1, width) << name << ": '" << content << "' ends right of the canvas (width " << width << ")";
      EXPECT_LE(y, height) << name << ": '" << content << "' below the canvas";
    }
    EXPECT_GT(texts, 10u) << name;
  }
 }
}

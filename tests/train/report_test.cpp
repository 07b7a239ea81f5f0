#include "crnn/train/report.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/test_support.h"
#include "train/run_fixture.h"

namespace {
namespace fs = std::filesystem;
using crnn::test::contains;
using crnn::test::count_of;
using crnn::test::error_of;
using crnn::test::expect_index_complete;
using crnn::test::polyline;
using crnn::test::read;
using crnn::test::TempDir;
using crnn::test::write_run;
using namespace crnn::train;
}  // namespace

TEST(ReportWrite, RunDirectoryGivesChartsHeatmapAndIndex) {
  TempDir t;
  write_run(t, "run");
  const fs::path out = t.path() / "out";
  const auto written = write_report((t.path() / "run").string(), out.string());
  ASSERT_EQ(written.size(), 4u);  // loss, recall, confusion_test, index
  EXPECT_EQ(written.back(), (out / "index.html").string());
  for (const char* f : {"loss.svg", "recall.svg", "confusion_test.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  expect_index_complete(out);

  // Validation recall in percent at epochs 1..3; the NaN validation loss of
  // epoch 3 leaves two points; best epoch 2 is marked on both charts.
  const std::string recall = read(out / "recall.svg");
  EXPECT_EQ(polyline(recall, "UA recall").size(), 3u);
  EXPECT_EQ(polyline(read(out / "loss.svg"), "validation loss").size(), 2u);
  EXPECT_EQ(polyline(read(out / "loss.svg"), "train loss").size(), 3u);
  EXPECT_TRUE(contains(recall, ">best epoch 2</text>"));
  EXPECT_EQ(count_of(recall, "class=\"marker\""), 1);

  const std::string heat = read(out / "confusion_test.svg");
  EXPECT_EQ(count_of(heat, "<g class=\"cell\""), 9);
  EXPECT_TRUE(contains(heat, "test — UA recall 50.0%, WA 55.0%"));

  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "<title>Training report: run (emotion3)</title>"));
  EXPECT_TRUE(contains(html, "<img src=\"confusion_test.svg\""));
  EXPECT_TRUE(contains(html, "<td>50.0%</td>"));  // test UA recall
  EXPECT_TRUE(contains(html, "<td>55.0%</td>"));  // test WA
  EXPECT_FALSE(contains(html, t.path().string() + "/out"));  // no absolute links
}

TEST(ReportWrite, NoEpochsYet) {
  TempDir t;
  t.write("run/metrics.csv",
          "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n");
  const fs::path out = t.path() / "run" / "report";
  write_report((t.path() / "run").string(), out.string());
  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "no epochs yet"));
  EXPECT_TRUE(contains(html, "no summary.json yet"));
  EXPECT_FALSE(fs::exists(out / "loss.svg"));
}

TEST(ReportWrite, RepeatDirectoryGivesOverviewAndASectionPerRun) {
  TempDir t;
  for (const char* seed : {"seed_1", "seed_2", "seed_10"}) write_run(t, seed);
  t.write("seeds_are_not_here/notes.txt", "not a run");
  t.write("repeat.json", R"({"runs": [
      {"seed": 1, "dir": "seed_1", "test_ua_recall": 0.40, "test_wa": 0.5},
      {"seed": 2, "dir": "seed_2", "test_ua_recall": 0.44, "test_wa": 0.52},
      {"seed": 10, "dir": "seed_10", "test_ua_recall": 0.42, "test_wa": 0.51}],
      "test_ua_recall_mean": 0.42, "test_ua_recall_std": 0.02,
      "test_wa_mean": 0.51, "test_wa_std": 0.01})");
  const fs::path out = t.path() / "report";
  std::vector<std::string> skipped;
  write_report(t.str(), out.string(), &skipped);
  EXPECT_TRUE(skipped.empty()) << skipped.front();
  expect_index_complete(out);
  for (const char* f : {"overview.svg", "seed_1/loss.svg", "seed_2/recall.svg", "seed_10/confusion_test.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;

  const std::string html = read(out / "index.html");
  EXPECT_EQ(count_of(html, "<section id=\"seed_"), 3);
  // Natural order: seed_2 before seed_10.
  EXPECT_LT(html.find("<section id=\"seed_2\""), html.find("<section id=\"seed_10\""));
  EXPECT_TRUE(contains(html, "<img src=\"seed_10/loss.svg\""));
  EXPECT_TRUE(contains(html, "42.0% ± 2.0"));
  EXPECT_TRUE(contains(html, "44.0%"));
  const std::string overview = read(out / "overview.svg");
  EXPECT_EQ(count_of(overview, "class=\"bar\""), 3);
  EXPECT_TRUE(contains(overview, ">seed 10</text>"));
  EXPECT_EQ(count_of(overview, "class=\"band\""), 1);
}

// A run the directory holds but repeat.json does not list (still running, or
// left from an earlier, larger repeat) is shown without a seed, and the mean
// row says it is not in repeat.json's mean.
TEST(ReportWrite, RunsNotInRepeatJsonAreNamedAsNotInItsMean) {
  TempDir t;
  for (const char* seed : {"seed_1", "seed_2", "seed_3"}) write_run(t, seed);
  t.write("repeat.json", R"({"runs": [{"seed": 1, "dir": "seed_1", "test_ua_recall": 0.40, "test_wa": 0.5}],
      "test_ua_recall_mean": 0.40, "test_ua_recall_std": null, "test_wa_mean": 0.5, "test_wa_std": null})");
  const fs::path out = t.path() / "report";
  write_report(t.str(), out.string());
  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "mean ± std (repeat.json: 1 run(s); the 2 shown without a seed are not in it)")) << html;
  EXPECT_EQ(count_of(read(out / "overview.svg"), "class=\"bar\""), 3);
  // All listed: the plain label.
  fs::remove_all(t.path() / "seed_2");
  fs::remove_all(t.path() / "seed_3");
  write_report(t.str(), out.string());
  EXPECT_TRUE(contains(read(out / "index.html"), "mean ± std (repeat.json)</th>"));
}

// A run of a repeat directory without metrics.csv (listed in repeat.json, named
// seed_N or holding a config.toml) is reported as skipped, never silently left out.
TEST(ReportWrite, RepeatDirectorySaysWhichRunsItSkipped) {
  TempDir t;
  write_run(t, "seed_1");
  t.write("seed_3/last.pt", "");                 // emptied run: a seed_N name
  t.write("other/config.toml", "[train]\n");     // a run directory by its config
  t.write("notes/readme.txt", "not a run");      // not a run: not mentioned
  t.write("repeat.json", R"({"runs": [
      {"seed": 1, "dir": "seed_1", "test_ua_recall": 0.40, "test_wa": 0.5},
      {"seed": 2, "dir": "seed_2", "test_ua_recall": 0.44, "test_wa": 0.52}],
      "test_ua_recall_mean": 0.42, "test_ua_recall_std": 0.02,
      "test_wa_mean": 0.51, "test_wa_std": 0.01})");
  std::vector<std::string> skipped;
  write_report(t.str(), (t.path() / "report").string(), &skipped);
  EXPECT_EQ(skipped, (std::vector<std::string>{"other: no metrics.csv (not a started run), left out",
                                               "seed_2: no metrics.csv (not a started run), left out",
                                               "seed_3: no metrics.csv (not a started run), left out"}));
  // metrics.csv that is a directory: an error naming it.
  fs::remove(t.path() / "seed_1" / "metrics.csv");
  fs::create_directories(t.path() / "seed_1" / "metrics.csv");
  const std::string run = (t.path() / "seed_1").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(run, run + "/r"); }), run + "/metrics.csv: is a directory, not a file"));
}

TEST(ReportWrite, RejectsMissingOrForeignDirectoriesAndBadFiles) {
  TempDir t;
  const std::string missing = (t.path() / "nope").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(missing, missing + "/r"); }), missing + ": no such directory"));

  t.write("empty/readme.txt", "hi");
  const std::string empty = (t.path() / "empty").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(empty, empty + "/r"); }), "neither metrics.csv nor run"));
  // An experiment's output directory: pointed to its results.md and its cells.
  t.write("exp/results.md", "# results\n");
  std::filesystem::create_directories(t.path() / "exp" / "runs");
  const std::string exp = (t.path() / "exp").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(exp, exp + "/r"); }),
                       exp + ": the output of `crnn experiment`, whose report is " + exp + "/results.md"));

  write_run(t, "broken");
  t.write("broken/eval_valid.json", "{\"split\": \"valid\", ");
  const std::string broken = (t.path() / "broken").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(broken, broken + "/r"); }),
                       broken + "/eval_valid.json: malformed JSON"));
  EXPECT_FALSE(fs::exists(t.path() / "broken" / "r" / "index.html"));  // nothing half-written
}

// A directory holding runs of different models (the demo's CLSTM and conv)
// compares them side by side: a model column, a mean ± std per model over its
// own seeds only, no mean over all runs and no mean band in the overview.
TEST(ReportWrite, DifferentModelsAreComparedNotAveraged) {
  TempDir t;
  const std::string clstm = "[model]\npreset = 'emotion-clstm'\n[data]\ntask = 'emotion8'\n";
  const std::string conv = "[model]\npreset = 'emotion-conv'\n[data]\ntask = 'emotion8'\n";
  for (const char* run : {"clstm_1", "clstm_2", "conv_1"}) {
    write_run(t, run);
    t.write(std::string(run) + "/config.toml", std::string(run).rfind("clstm", 0) == 0 ? clstm : conv);
  }
  // A different seed is the same model.
  t.write("clstm_2/config.toml", clstm + "[train]\nseed = 2\n");
  const fs::path out = t.path() / "report";
  write_report(t.str(), out.string());
  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "3 runs of 2 different models")) << html;
  EXPECT_TRUE(contains(html, "<th>model</th>"));
  EXPECT_TRUE(contains(html, "emotion-clstm, task emotion8: mean ± std over its 2 runs"));
  EXPECT_FALSE(contains(html, "emotion-conv, task emotion8: mean ± std"));  // one run: no spread
  EXPECT_FALSE(contains(html, "mean ± std (from the runs so far)"));
  EXPECT_EQ(count_of(read(out / "overview.svg"), "class=\"band\""), 0);
}

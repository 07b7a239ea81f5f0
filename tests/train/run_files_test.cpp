#include "crnn/train/run_files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/test_support.h"
#include "train/run_fixture.h"

namespace {
namespace fs = std::filesystem;
using crnn::test::contains;
using crnn::test::error_of;
using crnn::test::read;
using crnn::test::TempDir;
using crnn::test::write_run;
using namespace crnn::train;
}  // namespace

TEST(RunFiles, ReadsMetricsSummaryAndEval) {
  TempDir t;
  write_run(t);
  const auto rows = read_metrics_csv((t.path() / "metrics.csv").string());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].epoch, 2);
  EXPECT_DOUBLE_EQ(rows[1].val_ua_recall, 0.45);
  EXPECT_DOUBLE_EQ(rows[2].frames_per_s, 12400);
  EXPECT_TRUE(std::isnan(rows[2].val_loss));  // empty cell

  const RunSummary s = read_run_summary((t.path() / "summary.json").string());
  EXPECT_EQ(s.best_epoch, 2);
  EXPECT_EQ(s.labels.size(), 3u);
  EXPECT_DOUBLE_EQ(s.test_wa, 0.55);

  const EvalResult e = read_eval_json((t.path() / "eval_test.json").string());
  EXPECT_EQ(e.split, "test");
  EXPECT_EQ(e.count, 30);
  EXPECT_EQ(e.confusion[1][2], 2);

  // test_* absent or null before the test evaluation: NaN, not an error.
  t.write("s2.json", R"({"best_epoch": 1, "epochs_run": 1, "test_ua_recall": null})");
  const RunSummary early = read_run_summary((t.path() / "s2.json").string());
  EXPECT_TRUE(std::isnan(early.test_ua_recall));
  EXPECT_TRUE(std::isnan(early.test_wa));
}

TEST(RunFiles, SkipsARowCutShort) {
  TempDir t;
  // A last row without its line end (a truncated file, another writer still
  // appending) is not a row, whether its cells fail to parse or happen to.
  for (const std::string cut : {"2,0.9,0.", "2,0.9,0.8,0.3,0.35,10,1"}) {
    t.write("metrics.csv",
            "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n"
            "1,1.2,1.1,0.3,0.35,10,100\n" + cut);
    EXPECT_EQ(read_metrics_csv((t.path() / "metrics.csv").string()).size(), 1u) << cut;
  }
}

TEST(RunFiles, ErrorsNameTheFileAndLine) {
  TempDir t;
  const std::string header =
      "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n";
  const std::string csv = t.write("m1.csv", "epoch,loss\n1,2\n");
  std::string err = error_of([&] { read_metrics_csv(csv); });
  EXPECT_TRUE(contains(err, csv + ":1:"));
  EXPECT_TRUE(contains(err, "train_loss"));

  const std::string bad_cell = t.write("m2.csv", header + "1,1,1,0.1,0.1,1,1\n2,1,abc,0.1,0.1,1,1\n");
  err = error_of([&] { read_metrics_csv(bad_cell); });
  EXPECT_TRUE(contains(err, bad_cell + ":3:"));
  EXPECT_TRUE(contains(err, "val_loss \"abc\" is not a number"));

  // Values training cannot write: out-of-order epochs, recalls outside [0, 1], NaN or negative losses.
  for (const auto& [rows, message] : std::vector<std::pair<std::string, std::string>>{
           {"1,1,1,0.5,0.5,1,1\n1,1,1,0.5,0.5,1,1\n", ":3: epoch 1 does not follow epoch 1"},
           {"0,1,1,0.5,0.5,1,1\n", ":2: epoch 0 does not follow epoch 0 (epochs start at 1)"},
           {"1e300,1,1,0.5,0.5,1,1\n", ":2: epoch \"1e300\" is not a whole number of magnitude at most 10^9"},
           {"2.5,1,1,0.5,0.5,1,1\n", ":2: epoch \"2.5\" is not a whole number of magnitude at most 10^9"},
           {"1,1,1,-5.6,0.5,1,1\n", ":2: val_ua_recall -5.6 is not a fraction in [0, 1]"},
           {"1,1,1,0.5,nan,1,1\n", ":2: val_wa nan is not a fraction in [0, 1]"},
           {"1,nan,1,0.5,0.5,1,1\n", ":2: train_loss nan is negative or not a number"},
           {"1,1,-1,0.5,0.5,1,1\n", ":2: val_loss -1 is negative or not a number"}}) {
    const std::string odd = t.write("m4.csv", header + rows);
    EXPECT_TRUE(contains(error_of([&] { read_metrics_csv(odd); }), odd + message)) << error_of([&] { read_metrics_csv(odd); });
  }

  const std::string short_row = t.write("m3.csv", header + "1,1,1\n");
  EXPECT_TRUE(contains(error_of([&] { read_metrics_csv(short_row); }), short_row + ":2: expected 7 cells"));

  const std::string bad_json = t.write("summary.json", "{\"best_epoch\": 2,");
  err = error_of([&] { read_run_summary(bad_json); });
  EXPECT_TRUE(contains(err, bad_json + ": malformed JSON"));

  const std::string bad_type = t.write("s.json", R"({"epochs_run": 3, "best_epoch": "two"})");
  EXPECT_TRUE(contains(error_of([&] { read_run_summary(bad_type); }), "\"best_epoch\" must be an integer"));

  const std::string bad_eval = t.write("eval_x.json", R"({"labels": ["a", "b"], "confusion": [[1, 2]]})");
  err = error_of([&] { read_eval_json(bad_eval); });
  EXPECT_TRUE(contains(err, bad_eval));
  EXPECT_TRUE(contains(err, "\"confusion\" must be a 2×2 array"));
}

// The one mean ± std rule of every table: sample std (n − 1), NaN values left
// out as missing, no spread for a single value.
TEST(RunFiles, MeanStdIsTheSampleStdOverFiniteValues) {
  // mean of 1, 2, 3, 4 = 2.5; sample variance = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
  auto m = mean_std({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.std, std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_EQ(m.n, 4u);
  auto with_nan = mean_std({1, std::nan(""), 3});
  EXPECT_DOUBLE_EQ(with_nan.mean, 2.0);
  EXPECT_NEAR(with_nan.std, std::sqrt(2.0), 1e-12);  // (1 + 1) / (2 − 1)
  EXPECT_EQ(with_nan.n, 2u);
  auto one = mean_std({7});
  EXPECT_DOUBLE_EQ(one.mean, 7.0);
  EXPECT_TRUE(std::isnan(one.std));
  auto none = mean_std({std::nan("")});
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_EQ(none.n, 0u);
}

// Every writer's output reads back as what was written (one reader, one writer).
TEST(RunFiles, WritersRoundTripThroughTheirReaders) {
  TempDir t;
  std::vector<EpochMetrics> rows = {{1, 1.25, 1.5, 0.25, 0.5, 10.125, 1200.5}, {2, 0.75, 1.0, 0.5, 0.625, 9.5, 1300}};
  write_metrics_csv((t.path() / "metrics.csv").string(), rows);
  const auto back = read_metrics_csv((t.path() / "metrics.csv").string());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].epoch, 2);
  EXPECT_DOUBLE_EQ(back[1].val_wa, 0.625);
  EXPECT_DOUBLE_EQ(back[0].frames_per_s, 1200.5);

  RunSummary s;
  s.best_epoch = 3;
  s.epochs_run = 5;
  s.val_ua_recall = 0.5;
  s.val_wa = 0.25;
  s.wall_seconds = 12.5;
  s.task = "gender3";
  s.labels = {"child", "female", "male"};
  s.train_utterances = 10;
  s.test_speakers = 2;
  s.seed = 4;
  write_run_summary((t.path() / "summary.json").string(), s);
  const RunSummary r = read_run_summary((t.path() / "summary.json").string());
  EXPECT_EQ(r.best_epoch, 3);
  EXPECT_EQ(r.epochs_run, 5);
  EXPECT_DOUBLE_EQ(r.val_wa, 0.25);
  EXPECT_TRUE(std::isnan(r.test_ua_recall));  // no test split: null in the file
  EXPECT_EQ(r.labels, s.labels);
  EXPECT_EQ(r.train_utterances, 10);
  EXPECT_EQ(r.test_speakers, 2);
  EXPECT_EQ(r.seed, 4u);
  EXPECT_TRUE(run_finished(t.path().string()));

  EvalResult e;
  e.split = "test";
  e.task = "gender3";
  e.labels = {"a", "b"};
  e.count = 4;
  e.loss = 0.5;
  e.ua_recall = 0.75;
  e.wa = 0.75;
  e.per_class_recall = {0.5, 1.0};
  e.confusion = {{1, 1}, {0, 2}};
  write_eval_json((t.path() / "eval_test.json").string(), e);
  const EvalResult er = read_eval_json((t.path() / "eval_test.json").string());
  EXPECT_EQ(er.confusion, e.confusion);
  EXPECT_DOUBLE_EQ(er.loss, 0.5);
  EXPECT_EQ(er.per_class_recall, e.per_class_recall);

  RepeatSummary rs;
  rs.task = "gender3";
  rs.preset = "agender-clstm";
  rs.runs = {repeat_run(r, 1, "seed_1"), repeat_run(r, 2, "seed_2")};
  rs.runs[1].test_ua_recall = 0.5;
  summarize(rs);
  write_repeat_files(t.path().string(), rs);
  const RepeatSummary rr = read_repeat_json((t.path() / "repeat.json").string());
  ASSERT_EQ(rr.runs.size(), 2u);
  EXPECT_EQ(rr.runs[1].dir, "seed_2");
  EXPECT_TRUE(std::isnan(rr.runs[0].test_ua_recall));
  EXPECT_DOUBLE_EQ(rr.test_ua_recall.mean, 0.5);  // the one finite value
  EXPECT_TRUE(std::isnan(rr.test_ua_recall.std));
  EXPECT_EQ(rr.preset, "agender-clstm");
  const std::string md = read(t.path() / "repeat.md");
  EXPECT_TRUE(contains(md, "| **mean ± std** | **50.00** |")) << md;  // one value: no "± 0"
}

// A damaged summary.json does not count as a finished run (it is resumed), and
// no temporary file is left next to what a writer wrote.
TEST(RunFiles, DamagedSummaryIsNotFinishedAndWritesLeaveNoTemporaries) {
  TempDir t;
  t.write("summary.json", "{\"best_epoch\": 2,");
  EXPECT_FALSE(run_finished(t.path().string()));
  t.write("summary.json", "{\"best_epoch\": 2}");  // no epochs_run: not a summary
  EXPECT_FALSE(run_finished(t.path().string()));
  write_metrics_csv((t.path() / "metrics.csv").string(), {});
  for (const auto& e : fs::directory_iterator(t.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_TRUE(contains(error_of([&] { read_run_summary((t.path() / "absent.json").string()); }), "absent.json: no such file"));
}

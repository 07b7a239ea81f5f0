// Cross-validation summaries (train/cross_validation.h) against hand-worked
// figures: three folds of a two-class task, two seeds.
#include "crnn/train/cross_validation.h"
#include "crnn/train/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "support/test_support.h"

namespace {
namespace fs = std::filesystem;
using namespace crnn::train;

/// Writes DIR/seed_<seed>/eval_test.json holding `confusion` and returns the
/// run as a cell summary lists it (its UA recall computed by hand by the caller).
RepeatRun write_fold_run(const fs::path& dir, uint64_t seed, const std::vector<std::vector<int64_t>>& confusion,
                         double ua) {
  const std::string run = "seed_" + std::to_string(seed);
  fs::create_directories(dir / run);
  EvalResult e;
  e.split = "test";
  e.task = "label";
  e.labels = {"a", "b"};
  e.confusion = confusion;
  e.count = 0;
  for (const auto& row : confusion)
    for (auto v : row) e.count += v;
  e.ua_recall = ua;
  write_eval_json((dir / run / "eval_test.json").string(), e);
  RepeatRun r;
  r.seed = seed;
  r.dir = run;
  r.test_ua_recall = ua;
  return r;
}

}  // namespace

// Seed 1: folds [[2,0],[1,1]] (UA 0.75), [[1,1],[0,2]] (0.75), [[3,0],[0,1]] (1.0):
// pooled [[6,1],[1,4]] → recalls 6/7 and 4/5, UA 29/35, WA 10/12.
// Seed 2 has folds 0 and 1 only: not pooled, but its fold scores count in the
// folds' means.
TEST(CrossValidation, PooledAndOverFoldFiguresMatchAHandWorkedExample) {
  crnn::test::TempDir t;
  std::vector<CrossValidationFold> folds(3);
  const std::vector<std::vector<std::vector<int64_t>>> seed1 = {
      {{2, 0}, {1, 1}}, {{1, 1}, {0, 2}}, {{3, 0}, {0, 1}}};
  const std::vector<double> ua1 = {0.75, 0.75, 1.0};
  for (size_t f = 0; f < 3; ++f) {
    folds[f].dir = (t.path() / ("fold" + std::to_string(f))).string();
    folds[f].runs.runs.push_back(write_fold_run(folds[f].dir, 1, seed1[f], ua1[f]));
  }
  folds[0].runs.runs.push_back(write_fold_run(folds[0].dir, 2, {{2, 0}, {0, 2}}, 1.0));
  folds[1].runs.runs.push_back(write_fold_run(folds[1].dir, 2, {{0, 2}, {0, 2}}, 0.5));
  for (auto& f : folds) summarize(f.runs);

  const auto cv = summarize_cross_validation(folds);
  EXPECT_EQ(cv.folds, 3);
  EXPECT_EQ(cv.labels, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(cv.pooled_ua_recall.n, 1u);
  EXPECT_NEAR(cv.pooled_ua_recall.mean, (6.0 / 7 + 4.0 / 5) / 2, 1e-12);
  EXPECT_NEAR(cv.pooled_wa.mean, 10.0 / 12, 1e-12);
  EXPECT_EQ(cv.pooled_confusion, (std::vector<std::vector<int64_t>>{{6, 1}, {1, 4}}));
  // Fold means over seeds: (0.75 + 1.0) / 2, (0.75 + 0.5) / 2, 1.0.
  const std::vector<double> means = {0.875, 0.625, 1.0};
  const double m = (means[0] + means[1] + means[2]) / 3;
  double ss = 0;
  for (double v : means) ss += (v - m) * (v - m);
  ASSERT_EQ(cv.over_folds.n, 3u);
  EXPECT_NEAR(cv.over_folds.mean, m, 1e-12);
  EXPECT_NEAR(cv.over_folds.std, std::sqrt(ss / 2), 1e-12);  // sample std

  // Seed 2's third fold arrives: two seeds pooled, mean ± std over them.
  folds[2].runs.runs.push_back(write_fold_run(folds[2].dir, 2, {{1, 0}, {1, 1}}, 0.75));
  summarize(folds[2].runs);
  const auto both = summarize_cross_validation(folds);
  ASSERT_EQ(both.pooled_ua_recall.n, 2u);
  // Seed 2 pooled: [[3,2],[1,5]] → recalls 3/5 and 5/6.
  const double ua2 = (3.0 / 5 + 5.0 / 6) / 2, ua1_pooled = (6.0 / 7 + 4.0 / 5) / 2;
  EXPECT_NEAR(both.pooled_ua_recall.mean, (ua1_pooled + ua2) / 2, 1e-12);
  EXPECT_NEAR(both.pooled_ua_recall.std, std::abs(ua1_pooled - ua2) / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(both.pooled_confusion, (std::vector<std::vector<int64_t>>{{9, 3}, {2, 9}}));
}

// A fold without runs, one whose run has no eval_test.json (no test split) and
// one whose eval_test.json is damaged: that seed is not pooled, and the
// folds' figures count only the folds with a score.
TEST(CrossValidation, FoldsWithoutTestScoresAreNotPooled) {
  crnn::test::TempDir t;
  std::vector<CrossValidationFold> folds(2);
  folds[0].dir = (t.path() / "fold0").string();
  folds[0].runs.runs.push_back(write_fold_run(folds[0].dir, 1, {{1, 0}, {0, 1}}, 1.0));
  folds[1].dir = (t.path() / "fold1").string();
  for (auto& f : folds) summarize(f.runs);
  auto cv = summarize_cross_validation(folds);
  EXPECT_EQ(cv.pooled_ua_recall.n, 0u);
  EXPECT_TRUE(cv.pooled_confusion.empty());
  EXPECT_EQ(cv.over_folds.n, 1u);
  EXPECT_DOUBLE_EQ(cv.over_folds.mean, 1.0);

  // Fold 1 has a seed-1 run, but no eval_test.json: still nothing pooled.
  folds[1].runs.runs.push_back(write_fold_run(folds[1].dir, 1, {{1, 0}, {0, 1}}, 1.0));
  summarize(folds[1].runs);
  ASSERT_EQ(summarize_cross_validation(folds).pooled_ua_recall.n, 1u);  // with the file: pooled
  fs::remove(fs::path(folds[1].dir) / "seed_1" / "eval_test.json");
  EXPECT_EQ(summarize_cross_validation(folds).pooled_ua_recall.n, 0u);
  t.write("fold1/seed_1/eval_test.json", "{\"labels\": [");
  EXPECT_EQ(summarize_cross_validation(folds).pooled_ua_recall.n, 0u);
}

// One fold listing a seed twice (seed_1 and seed_01 read as the same seed)
// while another lacks it: the seed is not complete, and nothing crashes.
TEST(CrossValidation, ASeedTwiceInOneFoldDoesNotStandForAMissingFold) {
  crnn::test::TempDir t;
  std::vector<CrossValidationFold> folds(2);
  folds[0].dir = (t.path() / "fold0").string();
  folds[0].runs.runs.push_back(write_fold_run(folds[0].dir, 1, {{1, 0}, {0, 1}}, 1.0));
  folds[0].runs.runs.push_back(folds[0].runs.runs.back());
  folds[1].dir = (t.path() / "fold1").string();
  folds[1].runs.runs.push_back(write_fold_run(folds[1].dir, 2, {{1, 0}, {0, 1}}, 1.0));
  for (auto& f : folds) summarize(f.runs);
  EXPECT_EQ(summarize_cross_validation(folds).pooled_ua_recall.n, 0u);
}

TEST(ConfusionMatrix, AddingCountsPoolsMatricesAndRefusesOtherShapes) {
  ConfusionMatrix cm(2);
  cm.add(std::vector<std::vector<int64_t>>{{2, 0}, {1, 1}});
  cm.add(std::vector<std::vector<int64_t>>{{1, 1}, {0, 2}});
  EXPECT_EQ(cm.counts(), (std::vector<std::vector<int64_t>>{{3, 1}, {1, 3}}));
  EXPECT_DOUBLE_EQ(cm.ua_recall(), 0.75);
  EXPECT_THROW(cm.add(std::vector<std::vector<int64_t>>{{1, 0, 0}, {0, 1, 0}}), c10::Error);
  EXPECT_THROW(cm.add(std::vector<std::vector<int64_t>>{{1}}), c10::Error);
  EXPECT_THROW(cm.add(std::vector<std::vector<int64_t>>{{1, 0}, {0, 1, 0}}), c10::Error);  // a ragged second row
  EXPECT_THROW(cm.add(std::vector<std::vector<int64_t>>{{1, 0}, {0, -1}}), c10::Error);
  EXPECT_EQ(cm.counts(), (std::vector<std::vector<int64_t>>{{3, 1}, {1, 3}}));  // unchanged by what was refused
}

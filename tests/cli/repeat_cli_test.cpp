// `crnn repeat` on the tiny synthetic corpus (no espeak-ng, no ../shared):
// N seeded runs, their repeat.json / repeat.md, and a second call that skips
// the finished runs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <fmt/core.h>

#include "crnn/train/run_files.h"
#include "crnn/util/file_io.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"

namespace fs = std::filesystem;
using namespace crnn;

TEST(RepeatCli, TrainsEachSeedOnceAndReportsTheirMeanAndSampleStd) {
  test::TempDir dir;
  const auto corpus = test::make_tiny_corpus(dir);
  const std::string config = dir.write("tiny.toml", test::tiny_config(corpus, 2));
  const std::string out = dir.file("seeds");
  auto r = test::run_crnn("--threads 1 repeat " + config + " --seeds 2 -o " + out);
  ASSERT_EQ(r.status, 0) << r.out;

  // repeat.json agrees with the runs' own summaries (mean and n − 1 std, by hand).
  const auto s1 = train::read_run_summary(out + "/seed_1/summary.json");
  const auto s2 = train::read_run_summary(out + "/seed_2/summary.json");
  EXPECT_EQ(s1.seed, 1u);
  EXPECT_EQ(s2.seed, 2u);
  const auto rep = train::read_repeat_json(out + "/repeat.json");
  ASSERT_EQ(rep.runs.size(), 2u);
  const double mean = (s1.test_ua_recall + s2.test_ua_recall) / 2;
  const double sd = std::abs(s1.test_ua_recall - s2.test_ua_recall) / std::sqrt(2.0);
  EXPECT_NEAR(rep.test_ua_recall.mean, mean, 1e-12);
  EXPECT_NEAR(rep.test_ua_recall.std, sd, 1e-12);
  EXPECT_TRUE(fs::exists(out + "/repeat.md"));
  EXPECT_TRUE(test::contains(r.out, fmt::format("test UA recall {:.2f} ± {:.2f}%", 100 * mean, 100 * sd))) << r.out;

  // Again: both runs are finished and skipped; the files are the same.
  const std::string json_before = crnn::read_text_file(out + "/repeat.json");
  r = test::run_crnn("--threads 1 repeat " + config + " --seeds 2 -o " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(test::contains(r.out, "already finished, skipping")) << r.out;
  EXPECT_EQ(crnn::read_text_file(out + "/repeat.json"), json_before);
}

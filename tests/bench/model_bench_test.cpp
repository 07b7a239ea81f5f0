// bench/model_bench: one model timed in this process, and the worker protocol
// (`key value` lines) the parent reads back.
#include "crnn/bench/model_bench.h"

#include <gtest/gtest.h>

#include "crnn/nn/options.h"
#include "support/test_support.h"

using namespace crnn::bench;
using crnn::test::contains;
using crnn::test::error_of;

namespace {
Figures sample() {
  // train_s, infer_s, train and infer frames/s, peak and baseline RSS (MB)
  return Figures{0.125, 0.03125, 384, 1536, 250.5, 120.5};
}
void expect_equal(const Figures& a, const Figures& b) {
  EXPECT_EQ(a.train_s, b.train_s);
  EXPECT_EQ(a.infer_s, b.infer_s);
  EXPECT_EQ(a.train_frames_per_s, b.train_frames_per_s);
  EXPECT_EQ(a.infer_frames_per_s, b.infer_frames_per_s);
  EXPECT_EQ(a.peak_rss_mb, b.peak_rss_mb);
  EXPECT_EQ(a.baseline_rss_mb, b.baseline_rss_mb);
}
}  // namespace

TEST(BenchModel, WorkerOutputIsKeyValueLinesAndParsesBack) {
  const std::string text = format_figures(sample());
  EXPECT_EQ(text,
            "train_s 0.125000\ninfer_s 0.031250\ntrain_frames_per_s 384.000\ninfer_frames_per_s 1536.000\n"
            "peak_rss_mb 250.5\nbaseline_rss_mb 120.5\n");
  expect_equal(parse_figures(text), sample());
  // A warning the worker printed among its figures is passed over.
  expect_equal(parse_figures("crnn: warning: --threads 4 is more than the 2 core(s)\n" + text), sample());
}

TEST(BenchModel, ParsingNamesTheFirstMissingFigure) {
  EXPECT_EQ(error_of([] { parse_figures("train_s 0.1\ntrain_frames_per_s 3\n"); }), "no 'infer_s' line");
  EXPECT_EQ(error_of([] { parse_figures(""); }), "no 'train_s' line");
}

TEST(BenchModel, MediansPerFigureAndRatesFromTheMedianTimes) {
  std::vector<Figures> runs(3, sample());
  runs[0].train_s = 4;
  runs[1].train_s = 1;
  runs[2].train_s = 2;
  runs[0].peak_rss_mb = 300;
  const Figures m = median_figures(runs, /*frames_per_step=*/100);
  EXPECT_EQ(m.train_s, 2);
  EXPECT_EQ(m.train_frames_per_s, 50);  // 100 frames / 2 s, not the median of the runs' rates
  EXPECT_EQ(m.infer_frames_per_s, 3200);  // 100 / 0.03125
  EXPECT_EQ(m.peak_rss_mb, 250.5);
  runs.pop_back();  // even count: the mean of the middle two
  EXPECT_EQ(median_figures(runs, 100).train_s, 2.5);
  EXPECT_THROW(median_figures({}, 100), std::invalid_argument);
}

TEST(BenchModel, WorkerArgumentsAreTheHiddenBenchMode) {
  WorkerOptions w;
  w.model = "agender-cblstm";
  w.impl = "composed";
  w.batch = 4;
  w.frames = 50;
  w.min_seconds = 0.2;
  w.min_reps = 2;
  EXPECT_EQ(worker_args(w, 3),
            (std::vector<std::string>{"bench", "--threads", "3", "--worker", "--model", "agender-cblstm", "--impl",
                                      "composed", "--batch", "4", "--frames", "50", "--min-seconds", "0.2",
                                      "--min-reps", "2"}));
  w.phase = "infer";
  EXPECT_EQ(worker_args(w, 1).back(), "infer");
}

TEST(BenchModel, PresetProperties) {
  EXPECT_EQ(classes_for("emotion-clstm"), 8);
  EXPECT_EQ(classes_for("agender-baseline"), 3);
  EXPECT_TRUE(is_crnn("emotion-eclstm"));
  EXPECT_TRUE(is_crnn("agender-cblstm"));
  EXPECT_FALSE(is_crnn("emotion-conv"));
  EXPECT_FALSE(is_crnn("agender-baseline"));
}

TEST(BenchModel, TimesATinyModelInThisProcess) {
  WorkerOptions w;
  w.model = "emotion-conv";
  w.batch = 2;
  w.frames = 16;
  w.min_seconds = 0;
  w.min_reps = 1;
  const auto before = crnn::nn::default_implementation();
  w.impl = before == crnn::nn::Implementation::fused ? "composed" : "fused";
  const Figures f = time_model(w);
  EXPECT_EQ(crnn::nn::default_implementation(), before);  // restored
  EXPECT_GT(f.train_s, 0);
  EXPECT_GT(f.infer_s, 0);
  EXPECT_DOUBLE_EQ(f.train_frames_per_s, 32 / f.train_s);
  EXPECT_DOUBLE_EQ(f.infer_frames_per_s, 32 / f.infer_s);
  EXPECT_GT(f.baseline_rss_mb, 0);
  EXPECT_GE(f.peak_rss_mb + 0.5, f.baseline_rss_mb);

  w.phase = "infer";  // training not timed: reported as 1 s
  EXPECT_EQ(time_model(w).train_s, 1.0);
  w.phase = "fast";
  EXPECT_TRUE(contains(error_of([&] { time_model(w); }), "phase must be both, train or infer, got 'fast'"));
  w.phase = "both";
  w.impl = "turbo";
  EXPECT_FALSE(error_of([&] { time_model(w); }).empty());
  w.impl = "fused";
  w.model = "emotion-nope";
  EXPECT_FALSE(error_of([&] { time_model(w); }).empty());
}

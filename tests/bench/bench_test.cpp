// bench/bench: the benchmark's workers, figures and report formats. Workers
// are the crnn executable (CRNN_BINARY), on a tiny batch so that it runs in
// seconds.
#include "crnn/bench/bench.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>

#include "crnn/nn/flops.h"
#include "crnn/util/subprocess.h"
#include "support/test_support.h"

using namespace crnn::bench;
using crnn::test::contains;
using crnn::test::error_of;

namespace {

BenchOptions tiny() {
  BenchOptions o{/*models=*/{}, /*batch=*/2, /*frames=*/24, /*threads=*/1, /*min_seconds=*/0, /*min_reps=*/1};
  o.executable = CRNN_BINARY;
  return o;
}

/// A result with round figures, to check the derived ones and the formats by hand.
ModelResult by_hand() {
  // Figures: train_s, infer_s, train and infer frames/s, peak and baseline RSS (MB).
  return ModelResult{"emotion-clstm", /*crnn=*/true, /*batch=*/2, /*frames=*/24, /*threads=*/1, /*repeats=*/3,
                     /*train_flops=*/4e9, /*forward_flops=*/1e9, /*sgemm_peak_gflops=*/8,
                     /*fused=*/Figures{2, 0.25, 24, 192, 250.4, 120.5},
                     /*composed=*/Figures{5, 0.5, 9.6, 96, 300, 130}};
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

TEST(Bench, DerivedFiguresAndJsonOfAResultByHand) {
  const ModelResult r = by_hand();
  EXPECT_DOUBLE_EQ(r.train_gflops(), 2.0);  // 4 GFLOP per step in 2 s
  EXPECT_DOUBLE_EQ(r.infer_gflops(), 4.0);  // 1 GFLOP in 0.25 s
  EXPECT_DOUBLE_EQ(r.peak_fraction(), 0.25);
  EXPECT_DOUBLE_EQ(r.composed_train_gflops(), 0.8);
  EXPECT_DOUBLE_EQ(r.train_speedup(), 2.5);
  EXPECT_DOUBLE_EQ(r.infer_speedup(), 2.0);
  EXPECT_EQ(json_object(r),
            "{\"model\": \"emotion-clstm\", \"crnn\": true, \"batch\": 2, \"frames\": 24, \"threads\": 1, "
            "\"train_gflop_per_step\": 4, \"train_frames_per_s\": 24.0, \"infer_frames_per_s\": 192.0, "
            "\"train_gflops\": 2.00, \"infer_gflops\": 4.00, \"sgemm_peak_gflops\": 8.00, \"peak_fraction\": 0.2500, "
            "\"peak_rss_mb\": 250.4, \"baseline_rss_mb\": 120.5, \"repeats\": 3, \"precision\": \"fp32\", "
            "\"bf16_peak_gflops\": 0.00, \"infer_peak_fraction\": 0.5000, "
            "\"composed_train_frames_per_s\": 9.6, \"composed_infer_frames_per_s\": 96.0, "
            "\"composed_train_gflops\": 0.80, \"composed_peak_fraction\": 0.1000, \"composed_peak_rss_mb\": 300.0, "
            "\"composed_baseline_rss_mb\": 130.0, \"train_speedup\": 2.50, \"infer_speedup\": 2.00}");
  ModelResult fused_only = r;
  fused_only.composed.reset();
  const auto js = nlohmann::json::parse(json_object(fused_only));
  EXPECT_FALSE(js.contains("composed_train_frames_per_s"));
  EXPECT_FALSE(js.contains("train_speedup"));
  EXPECT_EQ(js["repeats"], 3);

  BenchReport report;
  report.models = {r, fused_only};
  const std::string text = json_report(report);
  EXPECT_EQ(text, "[\n  " + json_object(r) + ",\n  " + json_object(fused_only) + "\n]\n");
  EXPECT_EQ(nlohmann::json::parse(text).size(), 2u);
}

TEST(Bench, TextTableColumnsLineUp) {
  const std::string header = text_header(8.04, 2);
  const auto newline = header.find('\n');
  EXPECT_EQ(header.substr(0, newline + 1), "SGEMM peak (torch::mm 2048², best of 7, 2 threads): 8.0 GFLOP/s\n");
  const std::string columns = header.substr(newline + 1);
  EXPECT_EQ(words(columns).front(), "model");
  const std::string row = text_row(by_hand());
  EXPECT_EQ(words(row), (std::vector<std::string>{"emotion-clstm", "4.00", "24", "192", "2.0", "25.0%", "250", "|",
                                                  "10", "96", "300", "2.50x", "2.00x"}));
  EXPECT_EQ(row.size(), columns.size());
  EXPECT_EQ(row.find('|'), columns.find('|'));
}

// Two real workers (fused, composed) of the crnn executable, read back: the
// FLOPs are the hand count, the rates agree with the times.
// nn::activation_parts (what `crnn train` checks against the machine's memory
// before it builds a model) against the memory a training step really takes:
// a worker's peak resident memory over its resident memory once the model,
// batch and optimizer exist. Measured at 32 × 300: the estimate is 0.51–0.82
// of the growth (which adds allocator slack, LibTorch temporaries and the
// parameters' gradients); it must stay within 0.4–1.25 of it, i.e. neither
// ignore a large buffer nor invent one.
TEST(Bench, ActivationEstimateIsNearTheMeasuredGrowthOfATrainingStep) {
  for (const std::string model : {"emotion-clstm", "agender-cblstm", "agender-baseline"}) {
    WorkerOptions w;
    w.model = model;
    w.batch = 32;
    w.frames = 300;
    w.min_seconds = 0;
    w.min_reps = 2;
    w.phase = "train";
    std::vector<std::string> argv{CRNN_BINARY};
    for (const auto& a : worker_args(w, 1)) argv.push_back(a);
    const auto r = crnn::run_process(argv, crnn::Stderr::Inherit);
    ASSERT_TRUE(r.ok()) << model << ": " << r.describe();
    const Figures f = parse_figures(r.output);
    double estimate = 0;
    for (const auto& p : crnn::nn::activation_parts(
             crnn::nn::SequenceClassifierOptions::preset(model, classes_for(model)), 32, 300))
      estimate += p.bytes / (1024.0 * 1024.0);
    const double growth = f.peak_rss_mb - f.baseline_rss_mb;
    EXPECT_GE(estimate, 0.4 * growth) << model << ": estimate " << estimate << " MB, measured " << growth << " MB";
    EXPECT_LE(estimate, 1.25 * growth) << model << ": estimate " << estimate << " MB, measured " << growth << " MB";
  }
}

TEST(Bench, WorkersTimeAModelAndTheFlopsAreTheHandCount) {
  const ModelResult r = bench_model(tiny(), "emotion-conv", /*sgemm_peak_gflops=*/50);
  // Forward GEMM FLOPs per sequence of 24 frames, 26 features, 8 classes, by
  // hand: conv 10 windows × 2·(5·26)·100 + 1 window × 2·(5·100)·100, LSTM(256)
  // over 1 step 2·100·1024, Dense 2·256·400, classes 2·400·8 = 776,000.
  EXPECT_DOUBLE_EQ(r.forward_flops, 2 * 776000.0);
  EXPECT_DOUBLE_EQ(r.train_flops, 3 * 2 * 776000.0);
  EXPECT_FALSE(r.crnn);
  EXPECT_EQ(r.sgemm_peak_gflops, 50);
  ASSERT_TRUE(r.composed.has_value());
  for (const Figures* f : {&r.fused, &*r.composed}) {
    EXPECT_GT(f->train_s, 0);
    EXPECT_GT(f->infer_s, 0);
    EXPECT_DOUBLE_EQ(f->train_frames_per_s, 48 / f->train_s);
    EXPECT_DOUBLE_EQ(f->infer_frames_per_s, 48 / f->infer_s);
    EXPECT_GT(f->peak_rss_mb, 10);  // a whole process with LibTorch loaded
  }
  const auto js = nlohmann::json::parse(json_object(r));
  EXPECT_EQ(js["model"], "emotion-conv");
  EXPECT_EQ(js["threads"], 1);
  EXPECT_NEAR(js["train_gflop_per_step"].get<double>(), 0.004656, 1e-9);
}

// In bf16 the fractions are against the bf16 peak, the fp32 one still reported.
TEST(Bench, Bf16FiguresAreAgainstTheBf16Peak) {
  ModelResult r = by_hand();
  r.precision = "bf16";
  r.bf16_peak_gflops = 16;
  EXPECT_DOUBLE_EQ(r.matrix_peak_gflops(), 16.0);
  EXPECT_DOUBLE_EQ(r.peak_fraction(), 0.125);       // 2 GFLOP/s of 16
  EXPECT_DOUBLE_EQ(r.infer_peak_fraction(), 0.25);  // 4 of 16
  const std::string js = json_object(r);
  EXPECT_NE(js.find("\"sgemm_peak_gflops\": 8.00"), std::string::npos) << js;
  EXPECT_NE(js.find("\"precision\": \"bf16\", \"bf16_peak_gflops\": 16.00"), std::string::npos) << js;
  EXPECT_NE(js.find("\"composed_peak_fraction\": 0.0500"), std::string::npos) << js;
  const std::string header = text_header(8, 2, 16, "bf16");
  EXPECT_NE(header.find("bf16 peak"), std::string::npos) << header;
  EXPECT_NE(header.find("against the bf16 peak"), std::string::npos) << header;
  EXPECT_EQ(text_header(8, 2).find("bf16"), std::string::npos);
}

TEST(Bench, RunBenchmarkReportsThePeakThenEachModel) {
  BenchOptions o = tiny();
  o.models = {"emotion-baseline"};
  o.skip_composed = true;
  o.repeats = 2;
  std::vector<std::string> events;
  double peak_seen = 0;
  BenchProgress progress;
  progress.on_peak = [&](const BenchReport& peaks) {
    events.push_back("peak");
    peak_seen = peaks.sgemm_peak_gflops;
  };
  progress.on_model = [&](const ModelResult& r) { events.push_back(r.model); };
  const BenchReport report = run_benchmark(o, progress);
  EXPECT_EQ(events, (std::vector<std::string>{"peak", "emotion-baseline"}));
  // measure.h's SGEMM peak: a positive rate for any CPU and thread count.
  EXPECT_TRUE(std::isfinite(report.sgemm_peak_gflops));
  EXPECT_GT(report.sgemm_peak_gflops, 0.1);
  EXPECT_EQ(report.sgemm_peak_gflops, peak_seen);
  ASSERT_EQ(report.models.size(), 1u);
  EXPECT_EQ(report.models[0].repeats, 2);
  EXPECT_FALSE(report.models[0].composed.has_value());
  EXPECT_EQ(report.models[0].sgemm_peak_gflops, report.sgemm_peak_gflops);
}

TEST(Bench, ErrorsNameTheModelAndTheWorker) {
  EXPECT_NO_THROW(check_models({"emotion-conv", "agender-cblstm"}));
  const std::string unknown = error_of([] { check_models({"emotion-conv", "nope"}); });
  EXPECT_TRUE(contains(unknown, "nope: unknown model preset (known: "));
  EXPECT_TRUE(contains(unknown, "emotion-clstm"));
  BenchOptions o = tiny();
  o.models = {"nope"};
  EXPECT_THROW(run_benchmark(o), BenchError);  // before any peak or worker

  o.executable = "/bin/false";
  EXPECT_EQ(error_of([&] { bench_model(o, "emotion-conv", 1); }),
            "bench: the worker for emotion-conv (fused, batch 2 x 24 frames) failed: exit status 1 (its error, if "
            "any, is above)");
  o.executable = "/bin/echo";  // exits 0 without figures
  const std::string silent = error_of([&] { bench_model(o, "emotion-conv", 1); });
  EXPECT_TRUE(contains(silent, "bench: the worker for emotion-conv (fused, batch 2 x 24 frames) printed no 'train_s' line"));
  EXPECT_TRUE(contains(silent, "--worker"));  // echo's output, shown
  o.executable = "/nonexistent/crnn";
  EXPECT_TRUE(contains(error_of([&] { bench_model(o, "emotion-conv", 1); }), "/nonexistent/crnn"));
}

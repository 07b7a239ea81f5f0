// `crnn bench --json`: the documented keys are there and agree with each other
// (frames/s, GFLOP/s, peak fraction and speed-ups are different views of the
// same timings), on a tiny batch so that it runs in seconds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

using crnn::test::run_crnn;

TEST(BenchCli, JsonKeysAreConsistentWithEachOther) {
  auto r = run_crnn(
      "--threads 1 bench --model emotion-conv --model emotion-clstm --batch 2 --frames 24 "
      "--min-seconds 0 --min-reps 1 --repeats 2 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  // The JSON array starts on a line of its own (stderr is merged into the output).
  const auto start = r.out.rfind("[\n  {");
  ASSERT_NE(start, std::string::npos) << r.out;
  nlohmann::json js;
  try {
    js = nlohmann::json::parse(r.out.substr(start));
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << r.out;
  }
  ASSERT_EQ(js.size(), 2u);
  for (const auto& m : js) {
    for (const char* key : {"model", "train_frames_per_s", "infer_frames_per_s", "train_gflops",
                            "sgemm_peak_gflops", "peak_fraction", "peak_rss_mb",
                            "composed_train_frames_per_s", "composed_infer_frames_per_s",
                            "composed_peak_rss_mb", "train_speedup", "infer_speedup"})
      ASSERT_TRUE(m.contains(key)) << key << " missing in " << m.dump();
    EXPECT_EQ(m["repeats"], 2);
    // 3 × forward GEMM FLOPs for 2 sequences of 24 frames, 26 features, 8 classes, by hand:
    // conv: 10 windows × 2·5·26·100 + 1 window × 2·5·100·100, then LSTM(256) over 1 step
    //   2·100·1024, Dense 2·256·400, classes 2·400·8: 776,000 per sequence;
    // CLSTM: 10 × (5·2·26·400 + 4·2·100·400) + 1 × (5·2·100·400 + 4·2·100·400) + the same
    //   classifier: 5,376,000 per sequence.
    EXPECT_DOUBLE_EQ(m["train_gflop_per_step"].get<double>(),
                     m["model"] == "emotion-conv" ? 3 * 2 * 776000 / 1e9 : 3 * 2 * 5376000 / 1e9)
        << m["model"];
    EXPECT_EQ(m["threads"], 1);
    const double frames = 2 * 24;
    const double fps = m["train_frames_per_s"];
    // GFLOP/s = GFLOP per step × steps per second.
    EXPECT_NEAR(m["train_gflops"].get<double>(), m["train_gflop_per_step"].get<double>() * fps / frames,
                0.01 + 1e-3 * m["train_gflops"].get<double>());
    EXPECT_NEAR(m["peak_fraction"].get<double>(),
                m["train_gflops"].get<double>() / m["sgemm_peak_gflops"].get<double>(), 1e-3);
    // A speed-up is the ratio of the two paths' frames per second.
    EXPECT_NEAR(m["train_speedup"].get<double>(), fps / m["composed_train_frames_per_s"].get<double>(),
                0.01 + 1e-3 * m["train_speedup"].get<double>());
    EXPECT_NEAR(m["infer_speedup"].get<double>(),
                m["infer_frames_per_s"].get<double>() / m["composed_infer_frames_per_s"].get<double>(),
                0.01 + 1e-3 * m["infer_speedup"].get<double>());
    // The peak includes the baseline (a tiny step may add nothing measurable).
    EXPECT_GE(m["peak_rss_mb"].get<double>() + 0.05, m["baseline_rss_mb"].get<double>());
  }
  EXPECT_EQ(js[0]["model"], "emotion-conv");
  EXPECT_EQ(js[1]["crnn"], true);

  auto bad = run_crnn("bench --model nope");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("nope"), std::string::npos) << bad.out;
}

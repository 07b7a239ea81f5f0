// scripts/gemm-time.c, the LD_PRELOAD shim behind scripts/gemm-share: it must
// pass every sgemm_ call through unchanged (the products stay right), count
// exactly the FLOPs and calls made, group them by shape, and count the wall
// time of overlapping calls from two threads once (union <= window).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <tuple>

#include "crnn/data/manifest.h"
#include "support/test_support.h"

using crnn::test::run_command;

namespace {

// A program that calls the system BLAS's sgemm_ with known shapes (two threads
// at once for part of it) and checks every product against a naive loop.
const char* kProgram = R"(
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*, const int*);
static int product(int m, int n, int k) {  /* C (m x n) = A (m x k) B (k x n), column-major */
  float* a = malloc(sizeof(float) * m * k); float* b = malloc(sizeof(float) * k * n);
  float* c = malloc(sizeof(float) * m * n);
  for (int i = 0; i < m * k; ++i) a[i] = (float)((i * 7) % 11) - 5;
  for (int i = 0; i < k * n; ++i) b[i] = (float)((i * 5) % 13) - 6;
  const float one = 1, zero = 0;
  sgemm_("N", "N", &m, &n, &k, &one, a, &m, b, &k, &zero, c, &m);
  int bad = 0;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int l = 0; l < k; ++l) s += (double)a[i + l * m] * b[l + j * k];
      if (fabs(s - c[i + j * m]) > 1e-3) bad = 1;
    }
  free(a); free(b); free(c);
  return bad;
}
static void* worker(void* arg) {
  int bad = 0;
  for (int r = 0; r < 20; ++r) bad |= product(96, 80, 64);
  *(int*)arg = bad;
  return NULL;
}
int main(void) {
  int bad = 0;
  for (int r = 0; r < 3; ++r) bad |= product(64, 32, 16);
  bad |= product(8, 8, 8);
  pthread_t t[2]; int res[2];
  for (int i = 0; i < 2; ++i) pthread_create(&t[i], NULL, worker, &res[i]);
  for (int i = 0; i < 2; ++i) { pthread_join(t[i], NULL); bad |= res[i]; }
  if (bad) { fprintf(stderr, "wrong product\n"); return 1; }
  return 0;
}
)";

}  // namespace

TEST(GemmTimeShim, PassesCallsThroughAndCountsFlopsCallsAndShapes) {
  crnn::test::TempDir dir;
  const std::string shim = dir.file("gemm-time.so");
  auto r = run_command("cc -O2 -shared -fPIC -o '" + shim + "' '" + CRNN_SOURCE_DIR +
                       "/scripts/gemm-time.c' -ldl -lpthread");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string src = dir.write("prog.c", kProgram);
  const std::string prog = dir.file("prog");
  r = run_command("cc -O1 -o '" + prog + "' '" + src + "' -l:libblas.so.3 -lpthread -lm");
  if (r.status != 0) GTEST_SKIP() << "no system BLAS to link a test program against: " << r.out;

  // Without the shim: the program's products are right on their own.
  r = run_command("'" + prog + "'");
  ASSERT_EQ(r.status, 0) << r.out;

  const std::string out = dir.file("gemm.json");
  r = run_command("LD_PRELOAD='" + shim + "' CRNN_GEMM_TIME_OUT='" + out + "' '" + prog + "'");
  ASSERT_EQ(r.status, 0) << "products wrong through the shim: " << r.out;
  const auto j = nlohmann::json::parse(crnn::read_text_file(out));

  EXPECT_EQ(j.at("calls").get<long>(), 3 + 1 + 40);
  const double flops = 3 * 2.0 * 64 * 32 * 16 + 2.0 * 8 * 8 * 8 + 40 * 2.0 * 96 * 80 * 64;
  EXPECT_NEAR(j.at("gemm_flops").get<double>(), flops, flops * 1e-6);
  const double busy = j.at("gemm_seconds").get<double>(), window = j.at("window_seconds").get<double>();
  EXPECT_GT(busy, 0.0);
  EXPECT_LE(busy, window + 1e-9);  // overlapping calls counted once

  std::map<std::tuple<int, int, int>, long> calls;
  for (const auto& s : j.at("shapes")) {
    calls[{s.at("m").get<int>(), s.at("n").get<int>(), s.at("k").get<int>()}] = s.at("calls").get<long>();
    EXPECT_EQ(s.at("trans").get<std::string>(), "NN");
  }
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ((calls[{64, 32, 16}]), 3);
  EXPECT_EQ((calls[{8, 8, 8}]), 1);
  EXPECT_EQ((calls[{96, 80, 64}]), 40);
}

/* gemm-time.c — an LD_PRELOAD shim that times every single-precision BLAS
 * matrix product (sgemm_) a process makes, for scripts/gemm-share.
 *
 * Why: "fraction of the SGEMM peak" (crnn bench) is the product of two
 * measurable terms — how fast the GEMMs themselves run, and how much of the
 * wall-clock time is spent in them:
 *     fraction = (F / W) / P = (F_gemm / G) / P · (G / W) · (F / F_gemm)
 * with F the FLOPs counted, W the wall time, G the wall time during which at
 * least one sgemm_ call is running (calls from several threads overlap: their
 * union is counted once) and P the peak. This shim measures F_gemm and G
 * (and the window W from the first call's start to the last call's end), so a
 * preset's distance from the peak splits into "slow GEMMs" and "time outside
 * GEMMs" with numbers instead of guesses. LibTorch calls sgemm_ through the
 * PLT, so the wrapper sees every fp32 product (ATen's mm/addmm/bmm and crnn's
 * fused scans); bf16 products go through oneDNN and are not seen.
 *
 * Output (at exit, to $CRNN_GEMM_TIME_OUT or stderr): one JSON object with the
 * totals and the eight shapes that took longest.
 *
 * Build: cc -O2 -shared -fPIC -o gemm-time.so gemm-time.c -ldl -lpthread
 * Use:   LD_PRELOAD=./gemm-time.so crnn bench --worker ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_fn)(const char*, const char*, const int*, const int*, const int*,
                         const float*, const float*, const int*, const float*, const int*,
                         const float*, float*, const int*);

static sgemm_fn real_sgemm;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int active;            /* calls running now */
static double busy_since;     /* when `active` went 0 -> 1 */
static double busy_total;     /* union of the calls' intervals */
static double first_start = -1, last_end;
static double flops_total;
static long calls_total;

#define MAX_SHAPES 512
struct shape {
  int m, n, k;
  char ta, tb;
  long calls;
  double seconds; /* sum of the calls' own durations (may overlap across threads) */
};
static struct shape shapes[MAX_SHAPES];
static int shape_count;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) {
  if (!real_sgemm) real_sgemm = (sgemm_fn)dlsym(RTLD_NEXT, "sgemm_");
  if (!real_sgemm) {
    fprintf(stderr, "gemm-time: no sgemm_ behind the shim\n");
    abort();
  }
  double t0 = now();
  pthread_mutex_lock(&lock);
  if (active++ == 0) busy_since = t0;
  if (first_start < 0) first_start = t0;
  pthread_mutex_unlock(&lock);

  real_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

  double t1 = now();
  pthread_mutex_lock(&lock);
  if (--active == 0) busy_total += t1 - busy_since;
  last_end = t1;
  flops_total += 2.0 * (double)*m * (double)*n * (double)*k;
  ++calls_total;
  int i;
  for (i = 0; i < shape_count; ++i) {
    struct shape* s = &shapes[i];
    if (s->m == *m && s->n == *n && s->k == *k && s->ta == *ta && s->tb == *tb) break;
  }
  if (i == shape_count && shape_count < MAX_SHAPES) {
    shapes[i] = (struct shape){*m, *n, *k, *ta, *tb, 0, 0.0};
    ++shape_count;
  }
  if (i < shape_count) {
    shapes[i].calls++;
    shapes[i].seconds += t1 - t0;
  }
  pthread_mutex_unlock(&lock);
}

static int by_seconds(const void* x, const void* y) {
  double a = ((const struct shape*)x)->seconds, b = ((const struct shape*)y)->seconds;
  return (a < b) - (a > b);
}

__attribute__((destructor)) static void report(void) {
  if (calls_total == 0) return;
  const char* path = getenv("CRNN_GEMM_TIME_OUT");
  FILE* out = path ? fopen(path, "w") : stderr;
  if (!out) {
    perror("gemm-time: CRNN_GEMM_TIME_OUT");
    return;
  }
  qsort(shapes, shape_count, sizeof(shapes[0]), by_seconds);
  fprintf(out,
          "{\"calls\": %ld, \"gemm_flops\": %.6g, \"gemm_seconds\": %.6f, "
          "\"window_seconds\": %.6f, \"shapes\": [",
          calls_total, flops_total, busy_total, last_end - first_start);
  for (int i = 0; i < shape_count && i < 8; ++i) {
    const struct shape* s = &shapes[i];
    /* Fortran column-major: C(m×n) = op(A)(m×k)·op(B)(k×n). */
    fprintf(out,
            "%s{\"m\": %d, \"n\": %d, \"k\": %d, \"trans\": \"%c%c\", \"calls\": %ld, "
            "\"seconds\": %.6f, \"gflops_per_s\": %.1f}",
            i ? ", " : "", s->m, s->n, s->k, s->ta, s->tb, s->calls, s->seconds,
            s->calls * 2.0 * s->m * (double)s->n * s->k / s->seconds / 1e9);
  }
  fprintf(out, "]}\n");
  if (path) fclose(out);
}

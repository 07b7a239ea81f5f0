#include "crnn/kernels/fused_lstm.h"

#include <ATen/Parallel.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <type_traits>

#include "crnn/kernels/buffer_pool.h"
#include "crnn/util/threads.h"

namespace crnn::kernels {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------------------
// Elementwise math. The float path uses a Cephes-style exp written so that GCC
// auto-vectorizes the loops that call it (no library call, no branches): the
// nonlinearities are most of the non-GEMM time, and a scalar libm exp costs
// more than the GEMMs. Its relative error is ~2 ulp, far inside the tolerance
// the fused-vs-composed tests demand. The double path (finite-difference
// tests) uses libm.

inline float fast_exp(float x) {
  // The upper clamp keeps exp(x) (≈ 5.5e34) inside fast_recip's valid range
  // [1, 1e37.5]: at 88 its bit-trick guess turned negative and sigmoid / tanh
  // of arguments below about −43 came out NaN (long sequences, large cells).
  x = std::min(std::max(x, -87.0f), 80.0f);
  // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick: a plain
  // add/sub that vectorizes without SSE4.1's round instruction.
  const float magic = 12582912.0f;
  const float fn = (x * 1.44269504088896341f + magic) - magic;
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(fn) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// 1/d for d >= 1 without a division (the vector divider is the slowest unit
// these loops use): a bit-trick first guess (≤ 5 % off) and three Newton steps,
// each squaring the relative error: ≤ 1.5e-7 over [1, 1e37.5].
inline float fast_recip(float d) {
  int32_t i;
  std::memcpy(&i, &d, sizeof(i));
  i = 0x7EF311C7 - i;
  float r;
  std::memcpy(&r, &i, sizeof(r));
  r = r * (2.0f - d * r);
  r = r * (2.0f - d * r);
  r = r * (2.0f - d * r);
  return r;
}

struct FastMath {
  static inline float sigmoid(float x) { return fast_recip(1.0f + fast_exp(-x)); }
  static inline float tanh(float x) { return 2.0f * fast_recip(1.0f + fast_exp(-2.0f * x)) - 1.0f; }
};

struct LibMath {
  static inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static inline double tanh(double x) { return std::tanh(x); }
};

template <typename T>
struct MathFor;
template <>
struct MathFor<float> {
  using type = FastMath;
};
template <>
struct MathFor<double> {
  using type = LibMath;
};

// ---------------------------------------------------------------------------
// One step's elementwise work on rows [n0, n1). `g` holds the pre-activations
// (projection + W_h·h) and receives the activations i, f, g, o that backward
// needs. `cp` is c_{t−1} (zeros at t = 0).

template <typename T, typename M>
__attribute__((always_inline)) inline void lstm_forward_rows(
    int64_t n0, int64_t n1, int64_t m, T* __restrict g, const T* __restrict x,
    const int64_t* __restrict xi, const T* __restrict cp, T* __restrict c, T* __restrict h,
    const T* __restrict pi, const T* __restrict pf, const T* __restrict po, bool first) {
  const int64_t gm = 4 * m;
  for (int64_t n = n0; n < n1; ++n) {
    // Pre-activation = W_h·h (in g, absent at the first step) + the projection
    // row of this step's frame, read in place rather than gathered first.
    const T* __restrict xr = x + xi[n] * gm;
    T* __restrict gi = g + n * gm;
    T* __restrict gf = gi + m;
    T* __restrict gg = gi + 2 * m;
    T* __restrict go = gi + 3 * m;
    const T* __restrict cpn = first ? cp : cp + n * m;  // first: cp = m zeros
    T* __restrict cn = c + n * m;
    T* __restrict hn = h + n * m;
    // Two loops rather than a select per element: a conditional load would
    // keep GCC from vectorizing.
    if (first) {
      for (int64_t j = 0; j < m; ++j) {
        const T cprev = cpn[j];
        const T i = M::sigmoid(xr[j] + pi[j] * cprev);
        const T f = M::sigmoid(xr[m + j] + pf[j] * cprev);
        const T z = M::tanh(xr[2 * m + j]);
        const T cc = f * cprev + i * z;
        const T o = M::sigmoid(xr[3 * m + j] + po[j] * cc);
        gi[j] = i;
        gf[j] = f;
        gg[j] = z;
        go[j] = o;
        cn[j] = cc;
        hn[j] = o * M::tanh(cc);
      }
    } else {
      for (int64_t j = 0; j < m; ++j) {
        const T cprev = cpn[j];
        const T i = M::sigmoid(gi[j] + xr[j] + pi[j] * cprev);
        const T f = M::sigmoid(gf[j] + xr[m + j] + pf[j] * cprev);
        const T z = M::tanh(gg[j] + xr[2 * m + j]);
        const T cc = f * cprev + i * z;
        const T o = M::sigmoid(go[j] + xr[3 * m + j] + po[j] * cc);
        gi[j] = i;
        gf[j] = f;
        gg[j] = z;
        go[j] = o;
        cn[j] = cc;
        hn[j] = o * M::tanh(cc);
      }
    }
  }
}

// Backward of one LSTM step on rows [n0, n1), in place on `ag`: in, the saved
// activations (i, f, z, o); out, the pre-activation gradients. Also in: c_{t−1} (`cp`), c_t, the external gradients eh/ec, dh from the
// recurrence (`dhr`) — absent ones point at zeros, so that the loop has no
// branches and vectorizes — and the carried dc. Out:
// the pre-activation gradients `da` (N × 4m), the new carried dc, and the
// peephole gradient partial sums `dp` (3 × m) of this block.
template <typename T, typename M>
__attribute__((always_inline)) inline void lstm_backward_rows(
    int64_t n0, int64_t n1, int64_t m, T* __restrict ag, const T* __restrict cp,
    const T* __restrict c, const T* __restrict eh, const T* __restrict ec,
    const T* __restrict dhr, T* __restrict dcc, const T* __restrict pi,
    const T* __restrict pf, const T* __restrict po, T* __restrict dp, bool first) {
  const int64_t gm = 4 * m;
  T* __restrict dpi = dp;
  T* __restrict dpf = dp + m;
  T* __restrict dpo = dp + 2 * m;
  for (int64_t n = n0; n < n1; ++n) {
    // In place: the activations are read and their gradients written through
    // one pointer, so the compiler sees the exact dependences (and vectorizes).
    T* __restrict row = ag + n * gm;
    const T* __restrict cpn = first ? cp : cp + n * m;
    const T* __restrict cn = c + n * m;
    const T* __restrict ehn = eh + n * m;
    const T* __restrict ecn = ec + n * m;
    const T* __restrict dhn = dhr + n * m;
    T* __restrict dcn = dcc + n * m;
    for (int64_t j = 0; j < m; ++j) {
      const T dh = ehn[j] + dhn[j];
      T dc = dcn[j] + ecn[j];
      const T i = row[j], f = row[m + j], z = row[2 * m + j], o = row[3 * m + j];
      const T cc = cn[j], cprev = cpn[j];
      const T tc = M::tanh(cc);
      const T dao = dh * tc * o * (1 - o);
      dc += dh * o * (1 - tc * tc) + dao * po[j];
      const T dai = dc * z * i * (1 - i);
      const T daf = dc * cprev * f * (1 - f);
      const T daz = dc * i * (1 - z * z);
      row[j] = dai;
      row[m + j] = daf;
      row[2 * m + j] = daz;
      row[3 * m + j] = dao;
      dcn[j] = dc * f + dai * pi[j] + daf * pf[j];
      dpi[j] += dai * cprev;
      dpf[j] += daf * cprev;
      dpo[j] += dao * cc;
    }
  }
}

template <typename T, typename M>
__attribute__((always_inline)) inline void rnn_forward_rows(int64_t n0, int64_t n1, int64_t m,
                                                            T* __restrict g, const T* __restrict x,
                                                            const int64_t* __restrict xi,
                                                            T* __restrict h, bool first) {
  for (int64_t n = n0; n < n1; ++n) {
    const T* __restrict xr = x + xi[n] * m;
    T* __restrict gn = g + n * m;
    T* __restrict hn = h + n * m;
    if (first) {
      for (int64_t j = 0; j < m; ++j) hn[j] = M::sigmoid(xr[j]);
    } else {
      for (int64_t j = 0; j < m; ++j) hn[j] = M::sigmoid(gn[j] + xr[j]);
    }
  }
}

template <typename T>
__attribute__((always_inline)) inline void rnn_backward_rows(
    int64_t n0, int64_t n1, int64_t m, const T* __restrict h, const T* __restrict eh,
    const T* __restrict dhr, T* __restrict da) {
  for (int64_t n = n0; n < n1; ++n) {
    const T* __restrict hn = h + n * m;
    const T* __restrict ehn = eh + n * m;
    const T* __restrict dhn = dhr + n * m;
    T* __restrict dn = da + n * m;
    for (int64_t j = 0; j < m; ++j) {
      const T dh = ehn[j] + dhn[j];
      dn[j] = dh * hn[j] * (1 - hn[j]);
    }
  }
}

// The float instantiations are cloned for AVX2+FMA (x86-64-v3) and a baseline
// target; the loader picks the best one for the CPU at run time, so the build
// stays portable while the common machine gets 8-wide vector code.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CRNN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CRNN_VECTOR_CLONES
#endif

CRNN_VECTOR_CLONES void lstm_forward_f(int64_t n0, int64_t n1, int64_t m, float* g, const float* x,
                                       const int64_t* xi, const float* cp, float* c, float* h,
                                       const float* pi, const float* pf, const float* po,
                                       bool first) {
  lstm_forward_rows<float, FastMath>(n0, n1, m, g, x, xi, cp, c, h, pi, pf, po, first);
}
CRNN_VECTOR_CLONES void lstm_backward_f(int64_t n0, int64_t n1, int64_t m, float* ag,
                                        const float* cp, const float* c, const float* eh,
                                        const float* ec, const float* dhr, float* dcc,
                                        const float* pi, const float* pf, const float* po,
                                        float* dp, bool first) {
  lstm_backward_rows<float, FastMath>(n0, n1, m, ag, cp, c, eh, ec, dhr, dcc, pi, pf, po, dp,
                                      first);
}
CRNN_VECTOR_CLONES void rnn_forward_f(int64_t n0, int64_t n1, int64_t m, float* g, const float* x,
                                      const int64_t* xi, float* h, bool first) {
  rnn_forward_rows<float, FastMath>(n0, n1, m, g, x, xi, h, first);
}
CRNN_VECTOR_CLONES void rnn_backward_f(int64_t n0, int64_t n1, int64_t m, const float* h,
                                       const float* eh, const float* dhr, float* da) {
  rnn_backward_rows<float>(n0, n1, m, h, eh, dhr, da);
}

// ---------------------------------------------------------------------------
// AVX-512 versions of the LSTM passes, picked at run time when the CPU has
// AVX-512F. The auto-vectorized loops above leave the m mod 16 tail of every
// row scalar (m = 100: 4 of 100 elements, measured 22 % of the forward pass's
// time); here the tail is one masked vector. exp uses the same Cephes
// polynomial with AVX-512's roundscale / scalef for the 2^n split, and the
// reciprocal is rcp14 plus one Newton step (relative error ≈ 2^−28).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CRNN_AVX512_KERNELS 1
#define CRNN_AVX512 __attribute__((target("avx512f")))
// GCC 12's avx512fintrin.h seeds unmasked intrinsics with _mm512_undefined_ps(),
// which -Wmaybe-uninitialized reports inside the header (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

CRNN_AVX512 inline __m512 exp512(__m512 x) {
  // The bound first: max/min return their second operand when one is NaN, so
  // a NaN x stays NaN (with x first it became −87, and a NaN frame gave
  // sigmoid = tanh = 1: finite, ordinary-looking outputs).
  x = _mm512_min_ps(_mm512_set1_ps(80.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
  const __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, fn);
}
CRNN_AVX512 inline __m512 recip512(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}
CRNN_AVX512 inline __m512 sigmoid512(__m512 x) {
  return recip512(_mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
CRNN_AVX512 inline __m512 tanh512(__m512 x) {
  const __m512 s = recip512(_mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_mul_ps(x, _mm512_set1_ps(-2.0f)))));
  return _mm512_fmsub_ps(_mm512_set1_ps(2.0f), s, _mm512_set1_ps(1.0f));
}
CRNN_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// bf16 in and out of the AVX-512 passes (the bf16 mode of precision.h, which
// requires AVX-512BW): widening is exact (the bf16 bits are the float's upper
// half); narrowing rounds to nearest even, as c10::BFloat16 does for finite
// values.
#define CRNN_AVX512BW __attribute__((target("avx512f,avx512bw")))
CRNN_AVX512BW inline __m512 load_bf16(__mmask16 k, const uint16_t* p) {
  const __m256i half = _mm512_castsi512_si256(_mm512_maskz_loadu_epi16(static_cast<__mmask32>(k), p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}
CRNN_AVX512BW inline void store_bf16(uint16_t* p, __mmask16 k, __m512 v) {
  const __m512i b = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  _mm512_mask_cvtepi32_storeu_epi16(p, k, _mm512_srli_epi32(r, 16));
}

/// lstm_forward_rows<float, FastMath> in AVX-512 (same arguments and results).
/// kBf16: the recurrent product comes from `gb` (bf16 rows of 4m, not from
/// g) and h is also written rounded to bf16 into `hb` (rows of m, if set).
template <bool kBf16>
CRNN_AVX512BW void lstm_forward_avx512(int64_t n0, int64_t n1, int64_t m, float* __restrict g,
                                       const float* __restrict x, const int64_t* __restrict xi,
                                       const float* __restrict cp, float* __restrict c,
                                       float* __restrict h, const float* __restrict pi,
                                       const float* __restrict pf, const float* __restrict po,
                                       bool first, const uint16_t* __restrict gb = nullptr,
                                       uint16_t* __restrict hb = nullptr) {
  const int64_t gm = 4 * m;
  for (int64_t n = n0; n < n1; ++n) {
    const float* xr = x + xi[n] * gm;
    float* gi = g + n * gm;
    const float* cpn = first ? cp : cp + n * m;
    float* cn = c + n * m;
    float* hn = h + n * m;
    for (int64_t j = 0; j < m; j += 16) {
      const __mmask16 k = tail_mask(m - j);
      const __m512 cprev = _mm512_maskz_loadu_ps(k, cpn + j);
      __m512 ai = _mm512_maskz_loadu_ps(k, xr + j);
      __m512 af = _mm512_maskz_loadu_ps(k, xr + m + j);
      __m512 az = _mm512_maskz_loadu_ps(k, xr + 2 * m + j);
      __m512 ao = _mm512_maskz_loadu_ps(k, xr + 3 * m + j);
      if (!first && kBf16) {  // + W_h·h, in gb
        const uint16_t* gbn = gb + n * gm;
        ai = _mm512_add_ps(ai, load_bf16(k, gbn + j));
        af = _mm512_add_ps(af, load_bf16(k, gbn + m + j));
        az = _mm512_add_ps(az, load_bf16(k, gbn + 2 * m + j));
        ao = _mm512_add_ps(ao, load_bf16(k, gbn + 3 * m + j));
      } else if (!first) {  // + W_h·h, in g
        ai = _mm512_add_ps(ai, _mm512_maskz_loadu_ps(k, gi + j));
        af = _mm512_add_ps(af, _mm512_maskz_loadu_ps(k, gi + m + j));
        az = _mm512_add_ps(az, _mm512_maskz_loadu_ps(k, gi + 2 * m + j));
        ao = _mm512_add_ps(ao, _mm512_maskz_loadu_ps(k, gi + 3 * m + j));
      }
      const __m512 i = sigmoid512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, pi + j), cprev, ai));
      const __m512 f = sigmoid512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, pf + j), cprev, af));
      const __m512 z = tanh512(az);
      const __m512 cc = _mm512_fmadd_ps(f, cprev, _mm512_mul_ps(i, z));
      const __m512 o = sigmoid512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, po + j), cc, ao));
      _mm512_mask_storeu_ps(gi + j, k, i);
      _mm512_mask_storeu_ps(gi + m + j, k, f);
      _mm512_mask_storeu_ps(gi + 2 * m + j, k, z);
      _mm512_mask_storeu_ps(gi + 3 * m + j, k, o);
      _mm512_mask_storeu_ps(cn + j, k, cc);
      const __m512 hv = _mm512_mul_ps(o, tanh512(cc));
      _mm512_mask_storeu_ps(hn + j, k, hv);
      if (kBf16 && hb) store_bf16(hb + n * m + j, k, hv);
    }
  }
}

/// lstm_backward_rows<float, FastMath> in AVX-512 (same arguments and results).
/// kBf16: dh from the recurrence comes from `dhb` (bf16 rows of m; unset:
/// from dhr) and the pre-activation gradients are also written rounded to
/// bf16 into `dab` (rows of 4m, if set).
template <bool kBf16>
CRNN_AVX512BW void lstm_backward_avx512(int64_t n0, int64_t n1, int64_t m, float* __restrict ag,
                                        const float* __restrict cp, const float* __restrict c,
                                        const float* __restrict eh, const float* __restrict ec,
                                        const float* __restrict dhr, float* __restrict dcc,
                                        const float* __restrict pi, const float* __restrict pf,
                                        const float* __restrict po, float* __restrict dp, bool first,
                                        const uint16_t* __restrict dhb = nullptr,
                                        uint16_t* __restrict dab = nullptr) {
  const int64_t gm = 4 * m;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t n = n0; n < n1; ++n) {
    float* row = ag + n * gm;
    const float* cpn = first ? cp : cp + n * m;
    const float* cn = c + n * m;
    const float* ehn = eh + n * m;
    const float* ecn = ec + n * m;
    const float* dhn = dhr + n * m;
    float* dcn = dcc + n * m;
    for (int64_t j = 0; j < m; j += 16) {
      const __mmask16 k = tail_mask(m - j);
      const __m512 dhrec = kBf16 && dhb ? load_bf16(k, dhb + n * m + j) : _mm512_maskz_loadu_ps(k, dhn + j);
      const __m512 dh = _mm512_add_ps(_mm512_maskz_loadu_ps(k, ehn + j), dhrec);
      __m512 dc = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dcn + j), _mm512_maskz_loadu_ps(k, ecn + j));
      const __m512 i = _mm512_maskz_loadu_ps(k, row + j);
      const __m512 f = _mm512_maskz_loadu_ps(k, row + m + j);
      const __m512 z = _mm512_maskz_loadu_ps(k, row + 2 * m + j);
      const __m512 o = _mm512_maskz_loadu_ps(k, row + 3 * m + j);
      const __m512 cc = _mm512_maskz_loadu_ps(k, cn + j);
      const __m512 cprev = _mm512_maskz_loadu_ps(k, cpn + j);
      const __m512 tc = tanh512(cc);
      // dao = dh·tc·o·(1 − o)
      const __m512 dao = _mm512_mul_ps(_mm512_mul_ps(dh, tc), _mm512_mul_ps(o, _mm512_sub_ps(one, o)));
      // dc += dh·o·(1 − tc²) + dao·po
      dc = _mm512_add_ps(dc, _mm512_mul_ps(_mm512_mul_ps(dh, o), _mm512_fnmadd_ps(tc, tc, one)));
      dc = _mm512_fmadd_ps(dao, _mm512_maskz_loadu_ps(k, po + j), dc);
      const __m512 dai = _mm512_mul_ps(_mm512_mul_ps(dc, z), _mm512_mul_ps(i, _mm512_sub_ps(one, i)));
      const __m512 daf = _mm512_mul_ps(_mm512_mul_ps(dc, cprev), _mm512_mul_ps(f, _mm512_sub_ps(one, f)));
      const __m512 daz = _mm512_mul_ps(_mm512_mul_ps(dc, i), _mm512_fnmadd_ps(z, z, one));
      _mm512_mask_storeu_ps(row + j, k, dai);
      _mm512_mask_storeu_ps(row + m + j, k, daf);
      _mm512_mask_storeu_ps(row + 2 * m + j, k, daz);
      _mm512_mask_storeu_ps(row + 3 * m + j, k, dao);
      if (kBf16 && dab) {
        uint16_t* dr = dab + n * gm;
        store_bf16(dr + j, k, dai);
        store_bf16(dr + m + j, k, daf);
        store_bf16(dr + 2 * m + j, k, daz);
        store_bf16(dr + 3 * m + j, k, dao);
      }
      __m512 ndc = _mm512_mul_ps(dc, f);
      ndc = _mm512_fmadd_ps(dai, _mm512_maskz_loadu_ps(k, pi + j), ndc);
      ndc = _mm512_fmadd_ps(daf, _mm512_maskz_loadu_ps(k, pf + j), ndc);
      _mm512_mask_storeu_ps(dcn + j, k, ndc);
      float* dpi = dp + j;
      float* dpf = dp + m + j;
      float* dpo = dp + 2 * m + j;
      _mm512_mask_storeu_ps(dpi, k, _mm512_fmadd_ps(dai, cprev, _mm512_maskz_loadu_ps(k, dpi)));
      _mm512_mask_storeu_ps(dpf, k, _mm512_fmadd_ps(daf, cprev, _mm512_maskz_loadu_ps(k, dpf)));
      _mm512_mask_storeu_ps(dpo, k, _mm512_fmadd_ps(dao, cc, _mm512_maskz_loadu_ps(k, dpo)));
    }
  }
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#pragma GCC diagnostic pop
#endif

// Typed dispatch to the float clones or the generic double code.
template <typename T>
struct Kernels {
  static void lstm_forward(int64_t n0, int64_t n1, int64_t m, T* g, const T* x, const int64_t* xi,
                           const T* cp, T* c, T* h, const T* pi, const T* pf, const T* po,
                           bool first) {
    lstm_forward_rows<T, LibMath>(n0, n1, m, g, x, xi, cp, c, h, pi, pf, po, first);
  }
  static void lstm_backward(int64_t n0, int64_t n1, int64_t m, T* ag, const T* cp, const T* c,
                            const T* eh, const T* ec, const T* dhr, T* dcc, const T* pi,
                            const T* pf, const T* po, T* dp, bool first) {
    lstm_backward_rows<T, LibMath>(n0, n1, m, ag, cp, c, eh, ec, dhr, dcc, pi, pf, po, dp, first);
  }
  static void rnn_forward(int64_t n0, int64_t n1, int64_t m, T* g, const T* x, const int64_t* xi,
                          T* h, bool first) {
    rnn_forward_rows<T, LibMath>(n0, n1, m, g, x, xi, h, first);
  }
  static void rnn_backward(int64_t n0, int64_t n1, int64_t m, const T* h, const T* eh,
                           const T* dhr, T* da) {
    rnn_backward_rows<T>(n0, n1, m, h, eh, dhr, da);
  }
  // The LSTM passes reading and writing the bf16 operands themselves exist
  // for float on AVX-512 only; elsewhere the scan converts with copies.
  static bool has_bf16_passes() { return false; }
  static void lstm_forward_bf16(int64_t, int64_t, int64_t, T*, const T*, const int64_t*, const T*, T*, T*,
                                const T*, const T*, const T*, bool, const uint16_t*, uint16_t*) {
    TORCH_CHECK(false, "recurrent_scan: no bf16 passes for this type");
  }
  static void lstm_backward_bf16(int64_t, int64_t, int64_t, T*, const T*, const T*, const T*, const T*,
                                 const T*, T*, const T*, const T*, const T*, T*, bool, const uint16_t*,
                                 uint16_t*) {
    TORCH_CHECK(false, "recurrent_scan: no bf16 passes for this type");
  }
};
template <>
struct Kernels<float> {
  static void lstm_forward(int64_t n0, int64_t n1, int64_t m, float* g, const float* x,
                           const int64_t* xi, const float* cp, float* c, float* h, const float* pi,
                           const float* pf, const float* po, bool first) {
#ifdef CRNN_AVX512_KERNELS
    if (cpu_has_avx512()) return lstm_forward_avx512<false>(n0, n1, m, g, x, xi, cp, c, h, pi, pf, po, first);
#endif
    lstm_forward_f(n0, n1, m, g, x, xi, cp, c, h, pi, pf, po, first);
  }
  static void lstm_backward(int64_t n0, int64_t n1, int64_t m, float* ag, const float* cp,
                            const float* c, const float* eh, const float* ec, const float* dhr,
                            float* dcc, const float* pi, const float* pf, const float* po,
                            float* dp, bool first) {
#ifdef CRNN_AVX512_KERNELS
    if (cpu_has_avx512())
      return lstm_backward_avx512<false>(n0, n1, m, ag, cp, c, eh, ec, dhr, dcc, pi, pf, po, dp, first);
#endif
    lstm_backward_f(n0, n1, m, ag, cp, c, eh, ec, dhr, dcc, pi, pf, po, dp, first);
  }
  static void rnn_forward(int64_t n0, int64_t n1, int64_t m, float* g, const float* x,
                          const int64_t* xi, float* h, bool first) {
    rnn_forward_f(n0, n1, m, g, x, xi, h, first);
  }
  static void rnn_backward(int64_t n0, int64_t n1, int64_t m, const float* h, const float* eh,
                           const float* dhr, float* da) {
    rnn_backward_f(n0, n1, m, h, eh, dhr, da);
  }
  static bool has_bf16_passes() {
#ifdef CRNN_AVX512_KERNELS
    static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512bw");
    return has;
#else
    return false;
#endif
  }
  static void lstm_forward_bf16(int64_t n0, int64_t n1, int64_t m, float* g, const float* x,
                                const int64_t* xi, const float* cp, float* c, float* h, const float* pi,
                                const float* pf, const float* po, bool first, const uint16_t* gb,
                                uint16_t* hb) {
#ifdef CRNN_AVX512_KERNELS
    lstm_forward_avx512<true>(n0, n1, m, g, x, xi, cp, c, h, pi, pf, po, first, gb, hb);
#else
    TORCH_CHECK(false, "recurrent_scan: no bf16 passes in this build");
#endif
  }
  static void lstm_backward_bf16(int64_t n0, int64_t n1, int64_t m, float* ag, const float* cp,
                                 const float* c, const float* eh, const float* ec, const float* dhr,
                                 float* dcc, const float* pi, const float* pf, const float* po, float* dp,
                                 bool first, const uint16_t* dhb, uint16_t* dab) {
#ifdef CRNN_AVX512_KERNELS
    lstm_backward_avx512<true>(n0, n1, m, ag, cp, c, eh, ec, dhr, dcc, pi, pf, po, dp, first, dhb, dab);
#else
    TORCH_CHECK(false, "recurrent_scan: no bf16 passes in this build");
#endif
  }
};

/// How the scan splits the N sequences. With many sequences (the windows of
/// a CRNN layer) each thread takes whole blocks of rows through *all* steps:
/// per step a single-threaded GEMM on the block (W_h·h), then the fused
/// elementwise pass while the block's gates are still in L2 — no barrier per
/// step and no second thread pool. With few sequences (a classifier LSTM over
/// a batch) one block runs with the multi-threaded GEMM instead. The split
/// depends on N only, so results (peephole gradient sums) do not depend on
/// the thread count.
struct Blocking {
  int64_t rows;   ///< rows per block
  int64_t count;  ///< number of blocks
  bool parallel;  ///< blocks in parallel (single-threaded BLAS) vs one block
};

inline Blocking blocking_for(int64_t n) {
  if (!scan_uses_row_blocks(n)) return {std::max<int64_t>(n, 1), 1, false};
  // A multiple of 8 blocks of at most 256 rows: even shares for 2, 4 or 8
  // threads, and a 256-row block's gates (256 × 4m floats, 400 KB at m = 100)
  // still fit in L2 while W_h is repacked less often than with small blocks.
  const int64_t groups = (n + 8 * 256 - 1) / (8 * 256);
  int64_t rows = (n + 8 * groups - 1) / (8 * groups);
  rows = std::max<int64_t>(32, (rows + 7) / 8 * 8);
  return {rows, (n + rows - 1) / rows, true};
}

/// Calls f(block, n0, n1) for every block: in parallel with single-threaded
/// BLAS, or once with the BLAS's own threads.
template <typename F>
void for_blocks(int64_t n, const Blocking& bl, const F& f) {
  if (!bl.parallel) {
    f(int64_t{0}, int64_t{0}, n);
    return;
  }
  crnn::SingleThreadedBlas single;
  at::parallel_for(0, bl.count, 1, [&](int64_t b0, int64_t b1) {
    // Grad mode is thread-local and the pool's threads start with it on: the
    // blocks' at::mm_out on saved weights (which require grad) would refuse.
    at::NoGradGuard no_grad;
    for (int64_t b = b0; b < b1; ++b) f(b, b * bl.rows, std::min(n, (b + 1) * bl.rows));
  });
}

// Large scratch buffers come from the pool (buffer_pool.h): no page faults
// and zero-fills of ~100 MB per training step.
Tensor scratch(c10::IntArrayRef sizes, const torch::TensorOptions& opts) { return pooled_empty(sizes, opts); }
Tensor scratch_zeros(c10::IntArrayRef sizes, const torch::TensorOptions& opts) { return pooled_zeros(sizes, opts); }

/// The raw bits of a bf16 tensor, for the AVX-512 passes.
uint16_t* bf16_ptr(const Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

// dproj[index[t, n]] += da[t, n] for all t, n, columns [c0, c1).
template <typename T>
__attribute__((always_inline)) inline void scatter_add_columns(const T* da, const int64_t* idx, int64_t count,
                                                               int64_t width, int64_t c0, int64_t c1, T* dproj) {
  for (int64_t i = 0; i < count; ++i) {
    T* __restrict dst = dproj + idx[i] * width;
    const T* __restrict src = da + i * width;
    for (int64_t j = c0; j < c1; ++j) dst[j] += src[j];
  }
}
// The float loop as vector clones (it streams all gate gradients once more:
// 7 % of a training step when compiled for the baseline ISA).
CRNN_VECTOR_CLONES void scatter_add_columns_f(const float* da, const int64_t* idx, int64_t count, int64_t width,
                                              int64_t c0, int64_t c1, float* dproj) {
  scatter_add_columns<float>(da, idx, count, width, c0, c1, dproj);
}

// dproj[index[t, n]] += da[t, n] for all t, n. Threads own column ranges, so
// shared rows (overlapping windows) never race.
template <typename T>
void scatter_add_rows(const T* da, const int64_t* idx, int64_t count, int64_t width, T* dproj) {
  at::parallel_for(0, width, 64, [&](int64_t c0, int64_t c1) {
    if constexpr (std::is_same_v<T, float>) {
      scatter_add_columns_f(da, idx, count, width, c0, c1, dproj);
    } else {
      scatter_add_columns<T>(da, idx, count, width, c0, c1, dproj);
    }
  });
}

class RecurrentScan : public torch::autograd::Function<RecurrentScan> {
 public:
  static variable_list forward(AutogradContext* ctx, Tensor proj, Tensor index, Tensor weight_hh,
                               Tensor peepholes, int64_t cell, int64_t reduce, bool reduce_cell,
                               int64_t step, bool keep, bool bf16) {
    const bool lstm = static_cast<Cell>(cell) == Cell::lstm;
    const auto red = static_cast<Reduce>(reduce);
    const int64_t T_ = index.size(0), N = index.size(1), m = weight_hh.size(1);
    const int64_t G = lstm ? 4 : 1, gm = G * m;
    proj = proj.contiguous();
    index = index.contiguous();
    weight_hh = weight_hh.contiguous();
    const auto opts = proj.options();
    // With autograd off (inference) and a reduced output, only the current and
    // previous step live in memory; otherwise every step is kept for backward
    // (or returned).
    const bool all_steps = keep || red == Reduce::none;
    const int64_t gate_steps = keep ? T_ : 1;
    const int64_t state_steps = all_steps ? T_ : std::min<int64_t>(T_, 2);
    Tensor gates = scratch({gate_steps, N, gm}, opts);
    Tensor hbuf = scratch({state_steps, N, m}, opts);
    Tensor cbuf = lstm ? scratch({state_steps, N, m}, opts) : Tensor();
    Tensor peep = lstm ? peepholes.to(opts).contiguous() : Tensor();
    Tensor zeros = torch::zeros({m}, opts);
    Tensor out, argmax;
    if (red != Reduce::none) out = torch::empty({N, m}, opts);
    if (red == Reduce::max) argmax = torch::empty({N, m}, torch::kInt32);
    const Tensor whh_t = weight_hh.t();
    // bf16 products: W_hᵀ and h_{t−1} (two steps, ping-pong) as bf16 operands,
    // the product in bf16 widened into the fp32 gate rows.
    Tensor whh_t_b, hb, gb;
    if (bf16) {
      const auto bopts = opts.dtype(torch::kBFloat16);
      whh_t_b = weight_hh.to(torch::kBFloat16).t();
      // From LibTorch's allocator, not the pool: one step's worth, allocated
      // once per call, and a pooled block of an odd size would stay reserved
      // while the rest of the model runs (bf16 must not take more memory
      // than fp32; docs/performance.md).
      hb = torch::empty({2, N, m}, bopts);
      gb = torch::empty({N, gm}, bopts);
    }

    const Blocking bl = blocking_for(N);
    AT_DISPATCH_FLOATING_TYPES(proj.scalar_type(), "recurrent_scan_forward", [&] {
      using T = scalar_t;
      const T* pr = proj.data_ptr<T>();
      const int64_t* idx = index.data_ptr<int64_t>();
      const T* pi = lstm ? peep.data_ptr<T>() : nullptr;
      const T* zp = zeros.data_ptr<T>();
      T* op = out.defined() ? out.data_ptr<T>() : nullptr;
      int32_t* am = argmax.defined() ? argmax.data_ptr<int32_t>() : nullptr;
      const T inv_steps = T(1) / T(T_);
      // bf16: the AVX-512 LSTM pass reads the bf16 product and writes the
      // bf16 h itself; otherwise copies convert.
      const bool bf16_passes = bf16 && lstm && Kernels<T>::has_bf16_passes();
      // Step t on rows [n0, n1): the recurrent product (fp32: here, on the
      // block; bf16: already in gb for all rows), the fused elementwise pass,
      // the reduction.
      auto step_rows = [&](int64_t t, int64_t n0, int64_t n1) {
        const int64_t rows = n1 - n0;
        const int64_t ts = all_steps ? t : t % 2, tp = all_steps ? t - 1 : (t + 1) % 2;
        Tensor g = gates[keep ? t : 0].narrow(0, n0, rows);
        T* gp = g.data_ptr<T>();
        // h_{−1} = 0: the first step needs no recurrent product.
        if (t > 0 && bf16) {
          if (!bf16_passes) g.copy_(gb.narrow(0, n0, rows));
        } else if (t > 0) {
          at::mm_out(g, hbuf[tp].narrow(0, n0, rows), whh_t);
        }
        const int64_t* xi = idx + t * N + n0;
        T* hp = hbuf[ts].data_ptr<T>() + n0 * m;
        T* cp = lstm ? cbuf[ts].data_ptr<T>() + n0 * m : nullptr;
        const T* cprev = (lstm && t > 0) ? cbuf[tp].data_ptr<T>() + n0 * m : zp;
        if (bf16_passes) {
          uint16_t* hbn = t + 1 < T_ ? bf16_ptr(hb) + ((t % 2) * N + n0) * m : nullptr;
          Kernels<T>::lstm_forward_bf16(0, rows, m, gp, pr, xi, cprev, cp, hp, pi, pi + m, pi + 2 * m,
                                        t == 0, bf16_ptr(gb) + n0 * gm, hbn);
        } else if (lstm) {
          Kernels<T>::lstm_forward(0, rows, m, gp, pr, xi, cprev, cp, hp, pi, pi + m, pi + 2 * m,
                                   t == 0);
        } else {
          Kernels<T>::rnn_forward(0, rows, m, gp, pr, xi, hp, t == 0);
        }
        if (bf16 && !bf16_passes && t + 1 < T_)
          hb[t % 2].narrow(0, n0, rows).copy_(hbuf[ts].narrow(0, n0, rows));
        if (!op) return;
        // Reduce while the block's states are still in cache.
        const T* st = reduce_cell ? cp : hp;
        T* o = op + n0 * m;
        int32_t* a = am ? am + n0 * m : nullptr;
        const int64_t cnt = rows * m;
        if (red == Reduce::max) {
          for (int64_t i = 0; i < cnt; ++i) {
            // As torch's max: the first NaN wins and stays (a NaN state
            // must not be passed over as if it were small).
            if (t == 0 || st[i] > o[i] || (st[i] != st[i] && o[i] == o[i])) {
              o[i] = st[i];
              a[i] = static_cast<int32_t>(t);
            }
          }
        } else if (red == Reduce::mean) {
          for (int64_t i = 0; i < cnt; ++i) o[i] = (t == 0 ? T(0) : o[i]) + st[i] * inv_steps;
        } else if (red == Reduce::step && t == step) {
          std::memcpy(o, st, cnt * sizeof(T));
        }
      };
      if (!bf16) {
        // Each block through all steps while its gates stay in cache, with a
        // single-threaded GEMM per block and step.
        for_blocks(N, bl, [&](int64_t, int64_t n0, int64_t n1) {
          for (int64_t t = 0; t < T_; ++t) step_rows(t, n0, n1);
        });
      } else {
        // Step by step: one GEMM over all rows with every thread (oneDNN's
        // bf16 kernels reach their rate only multi-threaded: 1.1x fp32 on
        // one thread, 2.2x on two; docs/performance.md), then the blocks'
        // elementwise passes in parallel.
        for (int64_t t = 0; t < T_; ++t) {
          if (t > 0) at::mm_out(gb, hb[(t + 1) % 2], whh_t_b);
          for_blocks(N, bl, [&](int64_t, int64_t n0, int64_t n1) { step_rows(t, n0, n1); });
        }
      }
    });

    ctx->saved_data["cell"] = cell;
    ctx->saved_data["reduce"] = reduce;
    ctx->saved_data["reduce_cell"] = reduce_cell;
    ctx->saved_data["step"] = step;
    ctx->saved_data["rows"] = proj.size(0);
    ctx->saved_data["bf16"] = bf16;
    if (red == Reduce::none) {
      // The outputs are the saved states: save them as outputs (no copy, no cycle).
      ctx->save_for_backward({gates, hbuf, cbuf, weight_hh, peep, index, argmax});
      if (lstm) return {hbuf, cbuf};
      return {hbuf};
    }
    ctx->save_for_backward({keep ? gates : Tensor(), keep ? hbuf : Tensor(),
                            keep ? cbuf : Tensor(), weight_hh, peep, index, argmax});
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor gates = saved[0], hbuf = saved[1], cbuf = saved[2], weight_hh = saved[3],
                 peep = saved[4], index = saved[5], argmax = saved[6];
    TORCH_CHECK(gates.defined(), "recurrent_scan: backward through a scan run without autograd");
    TORCH_CHECK(!ctx->saved_data.count("consumed"),
                "recurrent_scan: backward ran twice (retain_graph); the fused kernels reuse their "
                "saved activations for the gradients — use the composed implementation");
    ctx->saved_data["consumed"] = true;
    const bool lstm = static_cast<Cell>(ctx->saved_data["cell"].toInt()) == Cell::lstm;
    const auto red = static_cast<Reduce>(ctx->saved_data["reduce"].toInt());
    const bool reduce_cell = ctx->saved_data["reduce_cell"].toBool();
    const int64_t step = ctx->saved_data["step"].toInt();
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    const int64_t T_ = index.size(0), N = index.size(1), m = weight_hh.size(1);
    const int64_t G = lstm ? 4 : 1, gm = G * m;
    const auto opts = gates.options();

    Tensor gh, gc, gred;  // external gradients
    if (red == Reduce::none) {
      gh = grads[0].defined() ? grads[0].contiguous() : Tensor();
      if (lstm && grads.size() > 1 && grads[1].defined()) gc = grads[1].contiguous();
    } else {
      gred = grads[0].defined() ? grads[0].contiguous() : torch::zeros({N, m}, opts);
    }

    // The pre-activation gradients (= d(gathered proj)) overwrite the saved
    // activations step by step: step t's activations are dead once its
    // gradients exist, and this halves the backward's largest buffer. The
    // price: this node's backward can run once only (checked above).
    Tensor da = gates;
    // The AVX-512 LSTM pass reads and writes the bf16 operands itself (bf16
    // exists for float only); then it reads dh from the bf16 product and the
    // fp32 dh buffer is not needed.
    const bool bf16_passes =
        bf16 && lstm && gates.scalar_type() == torch::kFloat && Kernels<float>::has_bf16_passes();
    Tensor dhr = bf16_passes ? Tensor() : scratch({N, m}, opts);
    Tensor dcc = lstm ? scratch_zeros({N, m}, opts) : Tensor();
    Tensor ext = red != Reduce::none ? scratch({N, m}, opts) : Tensor();
    const Blocking bl = blocking_for(N);
    Tensor dpart = torch::zeros({bl.count, 3, m}, opts);
    Tensor zeros = torch::zeros({m}, opts);
    Tensor zero_rows = scratch_zeros({N, m}, opts);  // stands in for absent gradients
    // bf16 products: W_h and da_{t+1} as bf16 operands (written by the AVX-512
    // pass, or converted while the block's rows are in cache), dh = da·W_h in
    // bf16 (read by the AVX-512 pass, or widened into dhr).
    Tensor whh_b, dab, dhb;
    if (bf16) {
      const auto bopts = opts.dtype(torch::kBFloat16);
      whh_b = weight_hh.to(torch::kBFloat16);
      dab = torch::empty({N, gm}, bopts);  // not pooled, as in the forward
      dhb = torch::empty({N, m}, bopts);
    }

    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "recurrent_scan_backward", [&] {
      using T = scalar_t;
      const T* pi = lstm ? peep.data_ptr<T>() : nullptr;
      const T* zp = zeros.data_ptr<T>();
      const T* gr = gred.defined() ? gred.data_ptr<T>() : nullptr;
      const int32_t* am = argmax.defined() ? argmax.data_ptr<int32_t>() : nullptr;
      T* ex = ext.defined() ? ext.data_ptr<T>() : nullptr;
      const T inv_steps = T(1) / T(T_);
      // Step t of block b (rows [n0, n1)): dh from step t+1 through W_h
      // (fp32: here, on the block; bf16: already in dhb for all rows), the
      // reduction's gradient, the fused elementwise backward.
      auto step_rows = [&](int64_t t, int64_t b, int64_t n0, int64_t n1) {
        const int64_t rows = n1 - n0, off = n0 * m;
        const T* zr = zero_rows.data_ptr<T>() + off;
        const bool rec = t < T_ - 1;
        if (rec && dhr.defined()) {
          Tensor dst = dhr.narrow(0, n0, rows);
          if (bf16) {
            if (!bf16_passes) dst.copy_(dhb.narrow(0, n0, rows));
          } else {
            at::mm_out(dst, da[t + 1].narrow(0, n0, rows), weight_hh);
          }
        }
        const T* eh = zr;
        const T* ec = zr;
        if (red == Reduce::none) {
          if (gh.defined()) eh = gh[t].data_ptr<T>() + off;
          if (gc.defined()) ec = gc[t].data_ptr<T>() + off;
        } else if (red != Reduce::step || t == step) {
          // The reduction's gradient for step t.
          T* e = ex + off;
          const T* g = gr + off;
          const int32_t* a = am ? am + off : nullptr;
          const int64_t cnt = rows * m;
          if (red == Reduce::max) {
            for (int64_t i = 0; i < cnt; ++i) e[i] = a[i] == t ? g[i] : T(0);
          } else if (red == Reduce::mean) {
            for (int64_t i = 0; i < cnt; ++i) e[i] = g[i] * inv_steps;
          } else {
            std::memcpy(e, g, cnt * sizeof(T));
          }
          (reduce_cell ? ec : eh) = e;
        }
        const T* cprev = (lstm && t > 0) ? cbuf[t - 1].data_ptr<T>() + off : zp;
        const T* dh = rec && dhr.defined() ? dhr.data_ptr<T>() + off : zr;
        T* dap = da[t].data_ptr<T>() + n0 * gm;
        if (bf16_passes) {
          Kernels<T>::lstm_backward_bf16(0, rows, m, dap, cprev, cbuf[t].data_ptr<T>() + off, eh, ec, dh,
                                         dcc.data_ptr<T>() + off, pi, pi + m, pi + 2 * m,
                                         dpart.data_ptr<T>() + b * 3 * m, t == 0,
                                         t < T_ - 1 ? bf16_ptr(dhb) + off : nullptr,
                                         t > 0 ? bf16_ptr(dab) + n0 * gm : nullptr);
        } else if (lstm) {
          Kernels<T>::lstm_backward(0, rows, m, dap, cprev, cbuf[t].data_ptr<T>() + off, eh, ec, dh,
                                    dcc.data_ptr<T>() + off, pi, pi + m, pi + 2 * m,
                                    dpart.data_ptr<T>() + b * 3 * m, t == 0);
        } else {
          Kernels<T>::rnn_backward(0, rows, m, hbuf[t].data_ptr<T>() + off, eh, dh, dap);
        }
        if (bf16 && !bf16_passes && t > 0) dab.narrow(0, n0, rows).copy_(da[t].narrow(0, n0, rows));
      };
      if (!bf16) {
        for_blocks(N, bl, [&](int64_t b, int64_t n0, int64_t n1) {
          for (int64_t t = T_ - 1; t >= 0; --t) step_rows(t, b, n0, n1);
        });
      } else {
        // Step by step with one multi-threaded bf16 GEMM over all rows, as in
        // the forward.
        for (int64_t t = T_ - 1; t >= 0; --t) {
          if (t < T_ - 1) at::mm_out(dhb, dab, whh_b);
          for_blocks(N, bl, [&](int64_t b, int64_t n0, int64_t n1) { step_rows(t, b, n0, n1); });
        }
      }
    });

    // The step buffers are freed before the bf16 chunks below are allocated.
    dab = Tensor();
    dhb = Tensor();
    dhr = Tensor();
    // dW_h = Σ_{t ≥ 1} da_tᵀ · h_{t−1}: one GEMM over all steps and sequences.
    Tensor dwhh;
    if (T_ > 1 && bf16) {
      // In bf16, over chunks of 2048 rows of (step, sequence): a chunk's bf16
      // copies (≤ 2 MB at 4m = 400) stay in cache and are small enough that
      // bf16 adds no full-size buffer; each chunk's product is summed in fp32.
      // The chunks depend on N and T only (deterministic).
      dwhh = torch::zeros_like(weight_hh);
      const int64_t rows_all = (T_ - 1) * N, per = 2048;
      const Tensor da_rows = da.narrow(0, 1, T_ - 1).reshape({rows_all, gm});
      const Tensor h_rows = hbuf.narrow(0, 0, T_ - 1).reshape({rows_all, m});
      for (int64_t r0 = 0; r0 < rows_all; r0 += per) {
        const int64_t c = std::min(per, rows_all - r0);
        auto a = da_rows.narrow(0, r0, c).to(torch::kBFloat16);
        auto h = h_rows.narrow(0, r0, c).to(torch::kBFloat16);
        dwhh.add_(at::mm(a.t(), h));
      }
    } else {
      dwhh = T_ > 1 ? at::mm(da.narrow(0, 1, T_ - 1).reshape({(T_ - 1) * N, gm}).t(),
                             hbuf.narrow(0, 0, T_ - 1).reshape({(T_ - 1) * N, m}))
                    : torch::zeros_like(weight_hh);
    }
    Tensor dpeep = lstm ? dpart.sum(0) : Tensor();
    Tensor dproj = scratch_zeros({rows, gm}, opts);
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "recurrent_scan_scatter", [&] {
      scatter_add_rows<scalar_t>(da.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), T_ * N, gm,
                                 dproj.data_ptr<scalar_t>());
    });
    return {dproj,    Tensor(), dwhh,     dpeep,    Tensor(),
            Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

bool scan_uses_row_blocks(int64_t sequences) { return sequences >= 256; }

std::vector<torch::Tensor> recurrent_scan(const torch::Tensor& proj, const torch::Tensor& index,
                                          const torch::Tensor& weight_hh,
                                          const torch::Tensor& peepholes,
                                          const ScanOptions& options) {
  const bool lstm = options.cell == Cell::lstm;
  const int64_t G = lstm ? 4 : 1;
  TORCH_CHECK(weight_hh.dim() == 2 && weight_hh.size(0) == G * weight_hh.size(1),
              "recurrent_scan: weight_hh must be ", G, "·m × m, got ", weight_hh.sizes());
  const int64_t m = weight_hh.size(1);
  TORCH_CHECK(proj.dim() == 2 && proj.size(1) == G * m, "recurrent_scan: proj must be rows × ",
              G * m, ", got ", proj.sizes());
  TORCH_CHECK(proj.device().is_cpu(), "recurrent_scan: the fused kernels run on the CPU only");
  TORCH_CHECK(proj.scalar_type() == torch::kFloat || proj.scalar_type() == torch::kDouble,
              "recurrent_scan: float or double projections expected, got ", proj.scalar_type());
  TORCH_CHECK(weight_hh.scalar_type() == proj.scalar_type(),
              "recurrent_scan: weight_hh and proj must share a dtype");
  TORCH_CHECK(index.dim() == 2 && index.scalar_type() == torch::kLong && index.device().is_cpu(),
              "recurrent_scan: index must be a T × N int64 CPU tensor");
  TORCH_CHECK(index.size(0) >= 1, "recurrent_scan: at least one step is needed");
  TORCH_CHECK(lstm || !options.reduce_cell, "recurrent_scan: the RNN has no cell state");
  TORCH_CHECK(options.reduce != Reduce::step ||
                  (options.step >= 0 && options.step < index.size(0)),
              "recurrent_scan: step ", options.step, " outside [0, ", index.size(0), ")");
  TORCH_CHECK(options.reduce != Reduce::max || index.size(0) < (int64_t{1} << 31),
              "recurrent_scan: too many steps for the max index");
  if (index.numel() > 0 && proj.size(0) > 0) {
    TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < proj.size(0),
                "recurrent_scan: index out of range of the ", proj.size(0), " projection rows");
  }
  Tensor peep = peepholes;
  if (lstm) {
    if (!peep.defined()) peep = torch::zeros({3, m}, proj.options());
    TORCH_CHECK(peep.dim() == 2 && peep.size(0) == 3 && peep.size(1) == m,
                "recurrent_scan: peepholes must be 3 × m, got ", peep.sizes());
  } else {
    peep = torch::zeros({3, m}, proj.options());
  }
  TORCH_CHECK(!options.bf16 || proj.scalar_type() == torch::kFloat,
              "recurrent_scan: bf16 products need float projections, got ", proj.scalar_type());
  // Keep every step's activations only when a gradient can be asked for.
  const bool keep = torch::GradMode::is_enabled() &&
                    (proj.requires_grad() || weight_hh.requires_grad() ||
                     (lstm && peep.requires_grad()));
  return RecurrentScan::apply(proj, index, weight_hh, peep, static_cast<int64_t>(options.cell),
                              static_cast<int64_t>(options.reduce), options.reduce_cell,
                              options.step, keep, options.bf16);
}

}  // namespace crnn::kernels

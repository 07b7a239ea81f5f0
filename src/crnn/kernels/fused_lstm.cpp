#include "crnn/kernels/fused_lstm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

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
  x = std::min(std::max(x, -87.0f), 88.0f);
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

struct FastMath {
  static inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
  static inline float tanh(float x) { return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f; }
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
    int64_t n0, int64_t n1, int64_t m, T* __restrict g, const T* __restrict cp,
    T* __restrict c, T* __restrict h, const T* __restrict pi, const T* __restrict pf,
    const T* __restrict po, bool first) {
  const int64_t gm = 4 * m;
  for (int64_t n = n0; n < n1; ++n) {
    T* __restrict gi = g + n * gm;
    T* __restrict gf = gi + m;
    T* __restrict gg = gi + 2 * m;
    T* __restrict go = gi + 3 * m;
    const T* __restrict cpn = first ? cp : cp + n * m;  // first: cp = m zeros
    T* __restrict cn = c + n * m;
    T* __restrict hn = h + n * m;
    for (int64_t j = 0; j < m; ++j) {
      const T cprev = cpn[j];
      const T i = M::sigmoid(gi[j] + pi[j] * cprev);
      const T f = M::sigmoid(gf[j] + pf[j] * cprev);
      const T z = M::tanh(gg[j]);
      const T cc = f * cprev + i * z;
      const T o = M::sigmoid(go[j] + po[j] * cc);
      gi[j] = i;
      gf[j] = f;
      gg[j] = z;
      go[j] = o;
      cn[j] = cc;
      hn[j] = o * M::tanh(cc);
    }
  }
}

// Backward of one LSTM step on rows [n0, n1). In: the saved activations `a`
// (i, f, z, o), c_{t−1} (`cp`), c_t, the external gradients eh/ec, dh from the
// recurrence (`dhr`) — absent ones point at zeros, so that the loop has no
// branches and vectorizes — and the carried dc. Out:
// the pre-activation gradients `da` (N × 4m), the new carried dc, and the
// peephole gradient partial sums `dp` (3 × m) of this block.
template <typename T, typename M>
__attribute__((always_inline)) inline void lstm_backward_rows(
    int64_t n0, int64_t n1, int64_t m, const T* __restrict a, const T* __restrict cp,
    const T* __restrict c, const T* __restrict eh, const T* __restrict ec,
    const T* __restrict dhr, T* __restrict dcc, T* __restrict da, const T* __restrict pi,
    const T* __restrict pf, const T* __restrict po, T* __restrict dp, bool first) {
  const int64_t gm = 4 * m;
  T* __restrict dpi = dp;
  T* __restrict dpf = dp + m;
  T* __restrict dpo = dp + 2 * m;
  for (int64_t n = n0; n < n1; ++n) {
    const T* __restrict ai = a + n * gm;
    const T* __restrict af = ai + m;
    const T* __restrict az = ai + 2 * m;
    const T* __restrict ao = ai + 3 * m;
    T* __restrict di = da + n * gm;
    T* __restrict df = di + m;
    T* __restrict dz = di + 2 * m;
    T* __restrict dO = di + 3 * m;
    const T* __restrict cpn = first ? cp : cp + n * m;
    const T* __restrict cn = c + n * m;
    const T* __restrict ehn = eh + n * m;
    const T* __restrict ecn = ec + n * m;
    const T* __restrict dhn = dhr + n * m;
    T* __restrict dcn = dcc + n * m;
    for (int64_t j = 0; j < m; ++j) {
      const T dh = ehn[j] + dhn[j];
      T dc = dcn[j] + ecn[j];
      const T i = ai[j], f = af[j], z = az[j], o = ao[j];
      const T cc = cn[j], cprev = cpn[j];
      const T tc = M::tanh(cc);
      const T dao = dh * tc * o * (1 - o);
      dc += dh * o * (1 - tc * tc) + dao * po[j];
      const T dai = dc * z * i * (1 - i);
      const T daf = dc * cprev * f * (1 - f);
      const T daz = dc * i * (1 - z * z);
      di[j] = dai;
      df[j] = daf;
      dz[j] = daz;
      dO[j] = dao;
      dcn[j] = dc * f + dai * pi[j] + daf * pf[j];
      dpi[j] += dai * cprev;
      dpf[j] += daf * cprev;
      dpo[j] += dao * cc;
    }
  }
}

template <typename T, typename M>
__attribute__((always_inline)) inline void rnn_forward_rows(int64_t n0, int64_t n1, int64_t m,
                                                            T* __restrict g, T* __restrict h) {
  for (int64_t n = n0; n < n1; ++n) {
    const T* __restrict gn = g + n * m;
    T* __restrict hn = h + n * m;
    for (int64_t j = 0; j < m; ++j) hn[j] = M::sigmoid(gn[j]);
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
#define CRNN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CRNN_VECTOR_CLONES
#endif

CRNN_VECTOR_CLONES void lstm_forward_f(int64_t n0, int64_t n1, int64_t m, float* g, const float* cp,
                                       float* c, float* h, const float* pi, const float* pf,
                                       const float* po, bool first) {
  lstm_forward_rows<float, FastMath>(n0, n1, m, g, cp, c, h, pi, pf, po, first);
}
CRNN_VECTOR_CLONES void lstm_backward_f(int64_t n0, int64_t n1, int64_t m, const float* a,
                                        const float* cp, const float* c, const float* eh,
                                        const float* ec, const float* dhr, float* dcc, float* da,
                                        const float* pi, const float* pf, const float* po,
                                        float* dp, bool first) {
  lstm_backward_rows<float, FastMath>(n0, n1, m, a, cp, c, eh, ec, dhr, dcc, da, pi, pf, po, dp,
                                      first);
}
CRNN_VECTOR_CLONES void rnn_forward_f(int64_t n0, int64_t n1, int64_t m, float* g, float* h) {
  rnn_forward_rows<float, FastMath>(n0, n1, m, g, h);
}
CRNN_VECTOR_CLONES void rnn_backward_f(int64_t n0, int64_t n1, int64_t m, const float* h,
                                       const float* eh, const float* dhr, float* da) {
  rnn_backward_rows<float>(n0, n1, m, h, eh, dhr, da);
}

// Typed dispatch to the float clones or the generic double code.
template <typename T>
struct Kernels {
  static void lstm_forward(int64_t n0, int64_t n1, int64_t m, T* g, const T* cp, T* c, T* h,
                           const T* pi, const T* pf, const T* po, bool first) {
    lstm_forward_rows<T, LibMath>(n0, n1, m, g, cp, c, h, pi, pf, po, first);
  }
  static void lstm_backward(int64_t n0, int64_t n1, int64_t m, const T* a, const T* cp,
                            const T* c, const T* eh, const T* ec, const T* dhr, T* dcc, T* da,
                            const T* pi, const T* pf, const T* po, T* dp, bool first) {
    lstm_backward_rows<T, LibMath>(n0, n1, m, a, cp, c, eh, ec, dhr, dcc, da, pi, pf, po, dp,
                                   first);
  }
  static void rnn_forward(int64_t n0, int64_t n1, int64_t m, T* g, T* h) {
    rnn_forward_rows<T, LibMath>(n0, n1, m, g, h);
  }
  static void rnn_backward(int64_t n0, int64_t n1, int64_t m, const T* h, const T* eh,
                           const T* dhr, T* da) {
    rnn_backward_rows<T>(n0, n1, m, h, eh, dhr, da);
  }
};
template <>
struct Kernels<float> {
  static void lstm_forward(int64_t n0, int64_t n1, int64_t m, float* g, const float* cp, float* c,
                           float* h, const float* pi, const float* pf, const float* po,
                           bool first) {
    lstm_forward_f(n0, n1, m, g, cp, c, h, pi, pf, po, first);
  }
  static void lstm_backward(int64_t n0, int64_t n1, int64_t m, const float* a, const float* cp,
                            const float* c, const float* eh, const float* ec, const float* dhr,
                            float* dcc, float* da, const float* pi, const float* pf,
                            const float* po, float* dp, bool first) {
    lstm_backward_f(n0, n1, m, a, cp, c, eh, ec, dhr, dcc, da, pi, pf, po, dp, first);
  }
  static void rnn_forward(int64_t n0, int64_t n1, int64_t m, float* g, float* h) {
    rnn_forward_f(n0, n1, m, g, h);
  }
  static void rnn_backward(int64_t n0, int64_t n1, int64_t m, const float* h, const float* eh,
                           const float* dhr, float* da) {
    rnn_backward_f(n0, n1, m, h, eh, dhr, da);
  }
};

/// Rows per block of the elementwise passes: a block's gates and states
/// (~(4 + 4)·m values per row) stay in L2 while its threads work on it. The
/// partition is fixed (not thread-count dependent), so the peephole gradient
/// sums are reproducible.
constexpr int64_t kBlockRows = 64;

inline int64_t block_count(int64_t n) { return (n + kBlockRows - 1) / kBlockRows; }

template <typename F>
void for_each_block(int64_t n, const F& f) {
  at::parallel_for(0, block_count(n), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b, b * kBlockRows, std::min(n, (b + 1) * kBlockRows));
  });
}

// Copies the projection rows named by index[t] into the step's gate buffer.
template <typename T>
void gather_rows(const T* proj, const int64_t* idx, int64_t n, int64_t width, T* out) {
  at::parallel_for(0, n, 256, [&](int64_t n0, int64_t n1) {
    for (int64_t i = n0; i < n1; ++i)
      std::memcpy(out + i * width, proj + idx[i] * width, width * sizeof(T));
  });
}

// dproj[index[t, n]] += da[t, n] for all t, n. Threads own column ranges, so
// shared rows (overlapping windows) never race.
template <typename T>
void scatter_add_rows(const T* da, const int64_t* idx, int64_t count, int64_t width, T* dproj) {
  at::parallel_for(0, width, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < count; ++i) {
      T* __restrict dst = dproj + idx[i] * width;
      const T* __restrict src = da + i * width;
      for (int64_t j = c0; j < c1; ++j) dst[j] += src[j];
    }
  });
}

class RecurrentScan : public torch::autograd::Function<RecurrentScan> {
 public:
  static variable_list forward(AutogradContext* ctx, Tensor proj, Tensor index, Tensor weight_hh,
                               Tensor peepholes, int64_t cell, int64_t reduce, bool reduce_cell,
                               int64_t step, bool keep) {
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
    Tensor gates = torch::empty({gate_steps, N, gm}, opts);
    Tensor hbuf = torch::empty({state_steps, N, m}, opts);
    Tensor cbuf = lstm ? torch::empty({state_steps, N, m}, opts) : Tensor();
    Tensor peep = lstm ? peepholes.to(opts).contiguous() : Tensor();
    Tensor zeros = torch::zeros({m}, opts);
    Tensor out, argmax;
    if (red != Reduce::none) out = torch::empty({N, m}, opts);
    if (red == Reduce::max) argmax = torch::empty({N, m}, torch::kInt32);
    const Tensor whh_t = weight_hh.t();

    AT_DISPATCH_FLOATING_TYPES(proj.scalar_type(), "recurrent_scan_forward", [&] {
      using T = scalar_t;
      const T* pr = proj.data_ptr<T>();
      const int64_t* idx = index.data_ptr<int64_t>();
      const T* pi = lstm ? peep.data_ptr<T>() : nullptr;
      const T* zp = zeros.data_ptr<T>();
      for (int64_t t = 0; t < T_; ++t) {
        Tensor g = gates[keep ? t : 0];
        Tensor h = hbuf[all_steps ? t : t % 2];
        Tensor c = lstm ? cbuf[all_steps ? t : t % 2] : Tensor();
        gather_rows<T>(pr, idx + t * N, N, gm, g.data_ptr<T>());
        // h_{−1} = 0: the first step needs no recurrent product.
        if (t > 0) g.addmm_(hbuf[all_steps ? t - 1 : (t - 1) % 2], whh_t);
        T* gp = g.data_ptr<T>();
        T* hp = h.data_ptr<T>();
        T* cp = lstm ? c.data_ptr<T>() : nullptr;
        const T* cprev = (lstm && t > 0) ? cbuf[all_steps ? t - 1 : (t - 1) % 2].data_ptr<T>() : zp;
        T* op = out.defined() ? out.data_ptr<T>() : nullptr;
        int32_t* am = argmax.defined() ? argmax.data_ptr<int32_t>() : nullptr;
        const T inv_steps = T(1) / T(T_);
        for_each_block(N, [&](int64_t, int64_t n0, int64_t n1) {
          if (lstm) {
            Kernels<T>::lstm_forward(n0, n1, m, gp, cprev, cp, hp, pi, pi + m, pi + 2 * m, t == 0);
          } else {
            Kernels<T>::rnn_forward(n0, n1, m, gp, hp);
          }
          if (!op) return;
          // Reduce while the block's states are still in cache.
          const T* s = (reduce_cell ? cp : hp);
          for (int64_t i = n0 * m; i < n1 * m; ++i) {
            switch (red) {
              case Reduce::max:
                if (t == 0 || s[i] > op[i]) {
                  op[i] = s[i];
                  am[i] = static_cast<int32_t>(t);
                }
                break;
              case Reduce::mean:
                op[i] = (t == 0 ? T(0) : op[i]) + s[i] * inv_steps;
                break;
              case Reduce::step:
                if (t == step) op[i] = s[i];
                break;
              case Reduce::none:
                break;
            }
          }
        });
      }
    });

    ctx->saved_data["cell"] = cell;
    ctx->saved_data["reduce"] = reduce;
    ctx->saved_data["reduce_cell"] = reduce_cell;
    ctx->saved_data["step"] = step;
    ctx->saved_data["rows"] = proj.size(0);
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
    const bool lstm = static_cast<Cell>(ctx->saved_data["cell"].toInt()) == Cell::lstm;
    const auto red = static_cast<Reduce>(ctx->saved_data["reduce"].toInt());
    const bool reduce_cell = ctx->saved_data["reduce_cell"].toBool();
    const int64_t step = ctx->saved_data["step"].toInt();
    const int64_t rows = ctx->saved_data["rows"].toInt();
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

    Tensor da = torch::empty({T_, N, gm}, opts);  // pre-activation gradients = d(gathered proj)
    Tensor dhr = torch::empty({N, m}, opts);
    Tensor dcc = lstm ? torch::zeros({N, m}, opts) : Tensor();
    Tensor ext = red != Reduce::none ? torch::empty({N, m}, opts) : Tensor();
    Tensor dpart = torch::zeros({block_count(N), 3, m}, opts);
    Tensor zeros = torch::zeros({m}, opts);
    Tensor zero_rows = torch::zeros({N, m}, opts);  // stands in for absent gradients

    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "recurrent_scan_backward", [&] {
      using T = scalar_t;
      const T* pi = lstm ? peep.data_ptr<T>() : nullptr;
      const T* zp = zeros.data_ptr<T>();
      const T* gr = gred.defined() ? gred.data_ptr<T>() : nullptr;
      const int32_t* am = argmax.defined() ? argmax.data_ptr<int32_t>() : nullptr;
      T* ex = ext.defined() ? ext.data_ptr<T>() : nullptr;
      for (int64_t t = T_ - 1; t >= 0; --t) {
        // dh from step t+1 through W_h: one GEMM across all sequences.
        const bool rec = t < T_ - 1;
        if (rec) at::mm_out(dhr, da[t + 1], weight_hh);
        const T* eh = nullptr;
        const T* ec = nullptr;
        if (red == Reduce::none) {
          eh = gh.defined() ? gh[t].data_ptr<T>() : nullptr;
          ec = gc.defined() ? gc[t].data_ptr<T>() : nullptr;
        } else {
          // The reduction's gradient for step t, built per block below.
          bool any = red != Reduce::step || t == step;
          if (any) (reduce_cell ? ec : eh) = ex;
        }
        const T* a = gates[t].data_ptr<T>();
        const T* cprev = (lstm && t > 0) ? cbuf[t - 1].data_ptr<T>() : zp;
        const T* cc = lstm ? cbuf[t].data_ptr<T>() : nullptr;
        const T* hh = hbuf[t].data_ptr<T>();
        const T* zr = zero_rows.data_ptr<T>();
        const T* dh = rec ? dhr.data_ptr<T>() : zr;
        T* dap = da[t].data_ptr<T>();
        T* dcp = lstm ? dcc.data_ptr<T>() : nullptr;
        T* dpp = dpart.data_ptr<T>();
        const T inv_steps = T(1) / T(T_);
        for_each_block(N, [&](int64_t b, int64_t n0, int64_t n1) {
          if (ex && (eh == ex || ec == ex)) {
            for (int64_t i = n0 * m; i < n1 * m; ++i) {
              switch (red) {
                case Reduce::max: ex[i] = am[i] == t ? gr[i] : T(0); break;
                case Reduce::mean: ex[i] = gr[i] * inv_steps; break;
                default: ex[i] = gr[i]; break;
              }
            }
          }
          const T* ehp = eh ? eh : zr;
          const T* ecp = ec ? ec : zr;
          if (lstm) {
            Kernels<T>::lstm_backward(n0, n1, m, a, cprev, cc, ehp, ecp, dh, dcp, dap, pi, pi + m,
                                      pi + 2 * m, dpp + b * 3 * m, t == 0);
          } else {
            Kernels<T>::rnn_backward(n0, n1, m, hh, ehp, dh, dap);
          }
        });
      }
    });

    // dW_h = Σ_{t ≥ 1} da_tᵀ · h_{t−1}: one GEMM over all steps and sequences.
    Tensor dwhh = T_ > 1 ? at::mm(da.narrow(0, 1, T_ - 1).reshape({(T_ - 1) * N, gm}).t(),
                                  hbuf.narrow(0, 0, T_ - 1).reshape({(T_ - 1) * N, m}))
                         : torch::zeros_like(weight_hh);
    Tensor dpeep = lstm ? dpart.sum(0) : Tensor();
    Tensor dproj = torch::zeros({rows, gm}, opts);
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "recurrent_scan_scatter", [&] {
      scatter_add_rows<scalar_t>(da.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), T_ * N, gm,
                                 dproj.data_ptr<scalar_t>());
    });
    return {dproj, Tensor(), dwhh, dpeep, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

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
  // Keep every step's activations only when a gradient can be asked for.
  const bool keep = torch::GradMode::is_enabled() &&
                    (proj.requires_grad() || weight_hh.requires_grad() ||
                     (lstm && peep.requires_grad()));
  return RecurrentScan::apply(proj, index, weight_hh, peep, static_cast<int64_t>(options.cell),
                              static_cast<int64_t>(options.reduce), options.reduce_cell,
                              options.step, keep);
}

}  // namespace crnn::kernels

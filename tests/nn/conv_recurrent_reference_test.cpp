// ConvRecurrent against a scalar-loop reference written straight from the
// paper's equations (§III: eq. 1 RNN, eqs. 3–7 peephole LSTM, eqs. 8–9 output
// maps) and SPEC §1 (every window from zero state; reduce over the window's
// frames; max pooling over windows). The reference uses only the layer's
// parameter values and plain double arithmetic — no tensor op of the library —
// so it checks the reading of the equations, not just that the fused and the
// composed paths agree with each other.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "crnn/nn/conv_recurrent.h"
#include "nn/combos.h"

using namespace crnn::nn;
using crnn::testing::all_combos;
using crnn::testing::Combo;
using crnn::testing::combo_name;

namespace {

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;  // rows

Mat to_mat(const torch::Tensor& t) {  // 2-D
  auto a = t.to(torch::kDouble).contiguous();
  Mat m(a.size(0), Vec(a.size(1)));
  for (int64_t i = 0; i < a.size(0); ++i)
    for (int64_t j = 0; j < a.size(1); ++j) m[i][j] = a[i][j].item<double>();
  return m;
}
Vec to_vec(const torch::Tensor& t) {
  auto a = t.to(torch::kDouble).contiguous();
  Vec v(a.size(0));
  for (int64_t i = 0; i < a.size(0); ++i) v[i] = a[i].item<double>();
  return v;
}
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
// Row r of W times x.
double dot(const Vec& w, const Vec& x) {
  double s = 0;
  for (size_t j = 0; j < x.size(); ++j) s += w[j] * x[j];
  return s;
}

/// The states of one direction over one window's frames, indexed by the
/// frame's position in the window (the backward direction runs positions
/// r1−1 … 0). Returns {h, c} per position.
struct DirStates {
  std::vector<Vec> h, c;
};

DirStates run_direction(const ConvRecurrentImpl& layer, int d, const std::vector<Vec>& frames) {
  const int64_t r1 = static_cast<int64_t>(frames.size());
  DirStates out;
  out.h.assign(r1, Vec());
  out.c.assign(r1, Vec());
  if (layer.options.kind() == RecurrentKind::rnn) {
    // eq. 1: h_t = σ(W_xh x_t + W_hh h_{t−1} + b_h), h_0 = 0.
    const Mat wx = to_mat(layer.rnn_weight_ih), wh = to_mat(layer.rnn_weight_hh);
    const Vec b = to_vec(layer.rnn_bias);
    Vec h(wh.size(), 0.0);
    for (int64_t t = 0; t < r1; ++t) {
      Vec next(h.size());
      for (size_t u = 0; u < h.size(); ++u) next[u] = sigmoid(dot(wx[u], frames[t]) + dot(wh[u], h) + b[u]);
      h = next;
      out.h[t] = h;
    }
    return out;
  }
  // eqs. 3–7, gate rows i, f, c, o; peepholes from c_{t−1} into i and f, from c_t into o.
  const auto p = layer.lstm->direction(d);
  const Mat wh = to_mat(p.weight_hh);
  const Vec b = to_vec(p.bias), pi = to_vec(p.peephole_i), pf = to_vec(p.peephole_f), po = to_vec(p.peephole_o);
  const size_t m = wh[0].size();
  Vec h(m, 0.0), c(m, 0.0);
  for (int64_t s = 0; s < r1; ++s) {
    const int64_t pos = d == 0 ? s : r1 - 1 - s;
    // Extended CLSTM: the input matrix of the frame's position in the window.
    const Mat wx = to_mat(layer.options.extended() ? p.weight_ih[pos] : p.weight_ih);
    const Vec& x = frames[pos];
    Vec hn(m), cn(m);
    for (size_t u = 0; u < m; ++u) {
      const double i = sigmoid(dot(wx[u], x) + dot(wh[u], h) + pi[u] * c[u] + b[u]);
      const double f = sigmoid(dot(wx[m + u], x) + dot(wh[m + u], h) + pf[u] * c[u] + b[m + u]);
      const double g = std::tanh(dot(wx[2 * m + u], x) + dot(wh[2 * m + u], h) + b[2 * m + u]);
      cn[u] = f * c[u] + i * g;
      const double o = sigmoid(dot(wx[3 * m + u], x) + dot(wh[3 * m + u], h) + po[u] * cn[u] + b[3 * m + u]);
      hn[u] = o * std::tanh(cn[u]);
    }
    h = hn, c = cn;
    out.h[pos] = h;
    out.c[pos] = c;
  }
  return out;
}

/// One window's n features.
Vec window_features(const ConvRecurrentImpl& layer, const std::vector<Vec>& frames) {
  const auto& o = layer.options;
  const int dirs = o.kind() == RecurrentKind::blstm ? 2 : 1;
  const int64_t r1 = static_cast<int64_t>(frames.size());
  std::vector<DirStates> st;
  for (int d = 0; d < dirs; ++d) st.push_back(run_direction(layer, d, frames));
  const bool cell = o.source() == FeatureSource::cell ||
                    (o.source() == FeatureSource::output && o.combine() == FeatureSource::cell);
  // Per position: both directions' states side by side (eq. 8's [h→; h←]).
  std::vector<Vec> per_pos(r1);
  for (int64_t t = 0; t < r1; ++t)
    for (int d = 0; d < dirs; ++d) {
      const Vec& s = cell ? st[d].c[t] : st[d].h[t];
      per_pos[t].insert(per_pos[t].end(), s.begin(), s.end());
    }
  if (o.source() == FeatureSource::output) {  // eqs. 2 / 8 / 9: y_t = W s_t + b
    const Mat w = to_mat(layer.output->weight);
    const Vec b = to_vec(layer.output->bias);
    for (auto& s : per_pos) {
      Vec y(w.size());
      for (size_t r = 0; r < w.size(); ++r) y[r] = dot(w[r], s) + b[r];
      s = y;
    }
  }
  const size_t n = per_pos[0].size();
  Vec f(n);
  for (size_t j = 0; j < n; ++j) {
    switch (o.reduce()) {
      case WindowReduce::last: f[j] = per_pos[r1 - 1][j]; break;  // the window's last frame
      case WindowReduce::max: {
        f[j] = per_pos[0][j];
        for (int64_t t = 1; t < r1; ++t) f[j] = std::max(f[j], per_pos[t][j]);
        break;
      }
      case WindowReduce::mean: {
        f[j] = 0;
        for (int64_t t = 0; t < r1; ++t) f[j] += per_pos[t][j] / r1;
        break;
      }
    }
  }
  return f;
}

/// The layer's output for one full-length sequence (T × k): windows at
/// 0, r2, 2·r2, … that fit, then max over p1 windows every p2.
std::vector<Vec> reference(const ConvRecurrentImpl& layer, const torch::Tensor& seq) {
  const auto& o = layer.options;
  const Mat x = to_mat(seq);
  const int64_t T = static_cast<int64_t>(x.size()), r1 = o.window(), r2 = o.shift();
  std::vector<Vec> windows;
  for (int64_t start = 0; start + r1 <= T; start += r2)
    windows.push_back(window_features(layer, std::vector<Vec>(x.begin() + start, x.begin() + start + r1)));
  std::vector<Vec> pooled;
  for (int64_t w = 0; w + o.pool() <= static_cast<int64_t>(windows.size()); w += o.pool_shift()) {
    Vec p = windows[w];
    for (int64_t q = 1; q < o.pool(); ++q)
      for (size_t j = 0; j < p.size(); ++j) p[j] = std::max(p[j], windows[w + q][j]);
    pooled.push_back(p);
  }
  return pooled;
}

}  // namespace

class ConvRecurrentReference : public ::testing::TestWithParam<Combo> {};

TEST_P(ConvRecurrentReference, BothPathsEqualAScalarLoopOfThePapersEquations) {
  const Combo c = GetParam();
  for (auto impl : {Implementation::fused, Implementation::composed}) {
    torch::manual_seed(21);
    // k = 3, n = 4 (blstm hidden/cell: m = 2 per direction); 11 frames → windows
    // of 3 every 2 → 5 windows → max over 2 every 1 → 4 outputs.
    ConvRecurrent layer(ConvRecurrentOptions(3, 4)
                            .kind(c.kind).source(c.source).combine(c.combine).reduce(c.reduce)
                            .extended(c.extended).window(3).shift(2).pool(2).pool_shift(1).impl(impl));
    layer->to(torch::kDouble);
    {
      // Non-zero peepholes and biases, large enough that every term matters.
      torch::NoGradGuard g;
      for (auto& p : layer->parameters()) p.uniform_(-1.0, 1.0);
    }
    auto x = torch::randn({2, 11, 3}, torch::kDouble);
    auto y = layer(PaddedSequence{x, torch::full({2}, 11, torch::kLong)});
    ASSERT_EQ(y.data.sizes(), (std::vector<int64_t>{2, 4, 4}));
    for (int64_t b = 0; b < 2; ++b) {
      const auto ref = reference(*layer, x[b]);
      ASSERT_EQ(ref.size(), 4u);
      for (int64_t t = 0; t < 4; ++t)
        for (int64_t j = 0; j < 4; ++j)
          EXPECT_NEAR(y.data[b][t][j].item<double>(), ref[t][j], 1e-12)
              << (impl == Implementation::fused ? "fused" : "composed") << " b=" << b << " t=" << t << " j=" << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, ConvRecurrentReference, ::testing::ValuesIn(all_combos()), combo_name);

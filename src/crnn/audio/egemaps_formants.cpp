#include "crnn/audio/egemaps_formants.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "crnn/audio/egemaps_spectral.h"
#include "crnn/audio/egemaps_voice.h"

namespace crnn::audio::egemaps {
namespace {

// Aberth-Ehrlich iteration for the roots of z^p + c[1] z^(p-1) + ... + c[p]
// (c[0] = 1 is ignored); z holds the starting points and receives the roots.
// Returns false if it did not converge.
bool aberth_roots(const double* c, int64_t p, std::vector<std::complex<double>>& z) {
  for (int iter = 0; iter < 60; ++iter) {
    double largest = 0.0;
    for (int64_t k = 0; k < p; ++k) {
      std::complex<double> v(1.0, 0.0), d(0.0, 0.0);
      for (int64_t i = 1; i <= p; ++i) {  // Horner: value and derivative
        d = d * z[k] + v;
        v = v * z[k] + c[i];
      }
      if (std::abs(d) == 0.0) continue;
      const std::complex<double> ratio = v / d;
      std::complex<double> sum(0.0, 0.0);
      for (int64_t j = 0; j < p; ++j)
        if (j != k) sum += 1.0 / (z[k] - z[j]);
      const std::complex<double> w = ratio / (1.0 - ratio * sum);
      if (!std::isfinite(w.real()) || !std::isfinite(w.imag())) return false;
      z[k] -= w;
      largest = std::max(largest, std::abs(w));
    }
    if (largest < 1e-9) return true;
  }
  return false;
}

}  // namespace

torch::Tensor lpc(const torch::Tensor& frames, int64_t order) {
  TORCH_CHECK(frames.dim() == 2 && order >= 1, "lpc: expected T x N frames and a positive order");
  const int64_t t_count = frames.size(0), n = frames.size(1);
  // Autocorrelation up to `order` for all frames at once.
  auto x = frames.to(torch::kDouble).contiguous();
  auto r = torch::zeros({t_count, order + 1}, torch::kDouble);
  for (int64_t lag = 0; lag <= std::min(order, n - 1); ++lag)
    r.select(1, lag).copy_((x.narrow(1, 0, n - lag) * x.narrow(1, lag, n - lag)).sum(1));
  auto a = torch::zeros({t_count, order + 1}, torch::kDouble);
  auto ra = r.accessor<double, 2>();
  auto aa = a.accessor<double, 2>();
  std::vector<double> cur(order + 1), prev(order + 1);
  for (int64_t t = 0; t < t_count; ++t) {
    std::fill(cur.begin(), cur.end(), 0.0);
    cur[0] = 1.0;
    // A tiny white-noise floor keeps silent and pure-tone frames well posed.
    double err = ra[t][0] * (1.0 + 1e-9) + 1e-20;
    for (int64_t i = 1; i <= order; ++i) {
      double acc = ra[t][i];
      for (int64_t j = 1; j < i; ++j) acc += cur[j] * ra[t][i - j];
      const double k = -acc / err;
      prev = cur;
      for (int64_t j = 1; j < i; ++j) cur[j] = prev[j] + k * prev[i - j];
      cur[i] = k;
      err *= std::max(1e-12, 1.0 - k * k);
    }
    for (int64_t i = 0; i <= order; ++i) aa[t][i] = cur[i];
  }
  return a;
}

Formants lpc_formants(const torch::Tensor& wave, int64_t sample_rate, int64_t frames, const FormantOptions& o,
                      int64_t block_frames) {
  TORCH_CHECK(o.order() >= 2 && o.count() >= 1, "egemaps formants: order must be >= 2 and count >= 1");
  const int64_t len = samples_of_ms(o.frame_ms(), sample_rate);
  const int64_t shift = samples_of_ms(10.0, sample_rate);
  const double rate = static_cast<double>(sample_rate);
  Formants out{torch::zeros({frames, o.count()}), torch::zeros({frames, o.count()})};
  if (frames == 0) return out;
  const int64_t offset = samples_of_ms(o.offset_ms(), sample_rate);
  torch::Tensor w = wave.narrow(0, std::min(offset, wave.size(0)), wave.size(0) - std::min(offset, wave.size(0))).contiguous();
  const int64_t need = (frames - 1) * shift + len + 1;
  if (w.size(0) < need) w = torch::constant_pad_nd(w, {0, need - w.size(0)}, 0.0).contiguous();
  // Pre-emphasis on the frame and its predecessor sample (x[-1] := x[0]).
  auto prev_w = torch::cat({w.narrow(0, 0, 1), w.narrow(0, 0, w.size(0) - 1)});
  auto emph = (w - o.preemphasis() * prev_w).contiguous();
  const auto window = torch::hamming_window(len, false, 0.54, 0.46, torch::kFloat).unsqueeze(0);
  // Block by block: the windowed frames of a whole long file would not fit.
  auto a = by_frame_blocks(frames, block_frames, [&](int64_t first, int64_t count) -> std::vector<torch::Tensor> {
             auto x = frames_of(emph.narrow(0, first * shift, (count - 1) * shift + len), len, shift, count);
             return {lpc(x * window, o.order())};
           })[0];  // T x (p+1)

  // Roots of z^p + a1 z^(p-1) + ... + ap by Aberth-Ehrlich iteration, started
  // from the previous frame's roots (neighbouring frames have similar
  // polynomials, so a few iterations suffice) or from a circle of radius 0.9.
  const int64_t p = o.order();
  auto aa = a.accessor<double, 2>();
  std::vector<std::complex<double>> z(static_cast<size_t>(p)), start(static_cast<size_t>(p));
  for (int64_t k = 0; k < p; ++k)
    start[k] = std::polar(0.9, 2.0 * M_PI * (static_cast<double>(k) + 0.25) / static_cast<double>(p));
  bool warm = false;
  auto fo = out.frequency.accessor<float, 2>(), bo = out.bandwidth.accessor<float, 2>();
  std::vector<std::pair<double, double>> found;
  for (int64_t t = 0; t < frames; ++t) {
    // Digital silence: the predictor is 1 (every root at the origin), no formants.
    bool silent = true;
    for (int64_t i = 1; i <= p && silent; ++i) silent = aa[t][i] == 0.0;
    if (silent) continue;
    if (!warm) z = start;
    warm = aberth_roots(&aa[t][0], p, z);
    if (!warm) {  // not converged from the previous frame's roots: once more from the circle
      z = start;
      warm = aberth_roots(&aa[t][0], p, z);
    }
    found.clear();
    for (int64_t i = 0; i < p; ++i) {
      if (z[i].imag() <= 0.0 || !std::isfinite(z[i].real()) || !std::isfinite(z[i].imag())) continue;
      const double hz = std::arg(z[i]) * rate / (2.0 * M_PI);
      const double bw = -std::log(std::max(1e-12, std::abs(z[i]))) * rate / M_PI;
      if (hz < o.min_hz() || hz > 0.5 * rate - o.min_hz()) continue;
      // A pole wider than the whole band (|z| < e^(-pi/2)) is no resonance:
      // near-silent frames put such poles close to the origin.
      if (bw > 0.5 * rate) continue;
      if (o.max_bandwidth_hz() > 0.0 && bw > o.max_bandwidth_hz()) continue;
      found.emplace_back(hz, bw);
    }
    std::sort(found.begin(), found.end());
    for (int64_t c = 0; c < std::min<int64_t>(o.count(), static_cast<int64_t>(found.size())); ++c) {
      fo[t][c] = static_cast<float>(found[c].first);
      bo[t][c] = static_cast<float>(found[c].second);
    }
  }
  return out;
}

torch::Tensor formant_levels_rel_f0(const PitchTrack& pitch, const torch::Tensor& frequency) {
  const int64_t frames = frequency.size(0), count = frequency.size(1);
  auto out = torch::full({frames, count}, kUnvoicedLevel);
  auto o = out.accessor<float, 2>();
  const auto fc = frequency.contiguous();
  auto f = fc.accessor<float, 2>();
  const float* f0 = pitch.f0_hz.data_ptr<float>();
  for (int64_t t = 0; t < frames; ++t) {
    if (f0[t] <= 0.0f) continue;
    const double h1 = harmonic_level_db(pitch, t, f0[t]);
    for (int64_t c = 0; c < count; ++c)
      if (f[t][c] > 0.0f) o[t][c] = static_cast<float>(harmonic_level_db(pitch, t, f[t][c]) - h1);
  }
  return out;
}

}  // namespace crnn::audio::egemaps

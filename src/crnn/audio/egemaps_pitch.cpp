#include "crnn/audio/egemaps_pitch.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crnn/audio/egemaps_spectral.h"

namespace crnn::audio::egemaps {
namespace {

constexpr int64_t kPitchFft = 2048;

// Normalized autocorrelation r(lag) of frame row `acf` (already divided by the
// window's autocorrelation), linear interpolation between lags.
double acf_at(const float* acf, int64_t n, double lag) {
  if (lag < 1.0 || lag >= static_cast<double>(n - 1)) return 0.0;
  const auto i = static_cast<int64_t>(lag);
  const double f = lag - static_cast<double>(i);
  return (1.0 - f) * acf[i] + f * acf[i + 1];
}

}  // namespace

torch::Tensor gauss_window(int64_t length, double sigma) {
  auto n = torch::arange(length, torch::kDouble);
  const double half = 0.5 * static_cast<double>(length - 1);
  return torch::exp(-0.5 * ((n - half) / (sigma * half)).square()).to(torch::kFloat);
}

PitchTrack track_pitch(const torch::Tensor& wave, int64_t sample_rate, int64_t frames, const PitchOptions& o,
                       int64_t block_frames) {
  TORCH_CHECK(o.min_f0_hz() > 0 && o.max_f0_hz() > o.min_f0_hz(), "egemaps pitch: bad F0 range ",
              o.min_f0_hz(), "..", o.max_f0_hz(), " Hz");
  TORCH_CHECK(o.harmonics() >= 1 && o.candidates() >= 1 && o.points_per_octave() >= 1,
              "egemaps pitch: harmonics, candidates and points_per_octave must be positive");
  const int64_t len = samples_of_ms(60.0, sample_rate);
  const int64_t shift = samples_of_ms(10.0, sample_rate);
  const double rate = static_cast<double>(sample_rate);
  const int64_t nfft = std::max<int64_t>(kPitchFft, [&] { int64_t p = 1; while (p < 2 * len) p <<= 1; return p; }());
  const int64_t bins = nfft / 2 + 1;
  PitchTrack track;
  track.bin_hz = rate / static_cast<double>(nfft);
  track.f0_hz = torch::zeros({frames});
  track.acf_peak = torch::zeros({frames});
  if (frames == 0) {
    track.amplitude = torch::zeros({0, bins});
    return track;
  }

  const auto window = gauss_window(len);
  // Window-corrected normalized autocorrelation (Boersma 1993).
  auto wspec = torch::fft::rfft(window, nfft);
  auto wacf = torch::fft::irfft(torch::real(wspec).square() + torch::imag(wspec).square(), nfft);
  const int64_t max_lag = std::min<int64_t>(len - 1, static_cast<int64_t>(rate / o.min_f0_hz()) + 2);
  const auto window_acf = (wacf.narrow(0, 0, max_lag + 1) / wacf[0]).clamp_min(1e-6).unsqueeze(0);

  // Subharmonic summation on a log-frequency grid.
  const double ppo = static_cast<double>(o.points_per_octave());
  const int64_t grid = static_cast<int64_t>(std::floor(ppo * std::log2(o.max_f0_hz() / o.min_f0_hz()))) + 1;
  auto g_hz = o.min_f0_hz() * torch::pow(2.0, torch::arange(grid, torch::kDouble) / ppo);  // G
  auto n = torch::arange(1, o.harmonics() + 1, torch::kDouble);                              // H
  auto f = g_hz.unsqueeze(1) * n.unsqueeze(0);                                               // G x H
  auto weight = torch::pow(o.compression(), n - 1.0).unsqueeze(0).expand({grid, o.harmonics()}).clone();
  const double top = std::min(o.max_spectrum_hz(), 0.5 * rate);
  weight.masked_fill_(f > top, 0.0);
  // The sum over harmonics of the linearly interpolated amplitude spectrum is
  // linear in the spectrum: one (bins x grid) matrix, one matrix product for
  // all frames. Only bins up to the highest harmonic used take part.
  auto pos = (f / track.bin_hz).clamp(0.0, static_cast<double>(bins - 2));
  const int64_t used = std::min<int64_t>(bins, static_cast<int64_t>(std::ceil(top / track.bin_hz)) + 2);
  auto shs_matrix = torch::zeros({used, grid}, torch::kDouble);
  {
    auto pa = pos.accessor<double, 2>();
    auto wa = weight.accessor<double, 2>();
    auto ma = shs_matrix.accessor<double, 2>();
    for (int64_t g = 0; g < grid; ++g) {
      for (int64_t h = 0; h < o.harmonics(); ++h) {
        if (wa[g][h] == 0.0) continue;
        const auto i = static_cast<int64_t>(pa[g][h]);
        const double fr = pa[g][h] - static_cast<double>(i);
        if (i + 1 >= used) continue;
        ma[i][g] += wa[g][h] * (1.0 - fr);
        ma[i + 1][g] += wa[g][h] * fr;
      }
    }
  }
  const auto shs_weights = shs_matrix.to(torch::kFloat);

  // Per frame, block by block (the spectra of a whole long file would not
  // fit): amplitude spectrum, energy, normalized autocorrelation, SHS curve.
  const auto whole = wave.contiguous();
  auto per_frame = by_frame_blocks(frames, block_frames, [&](int64_t first, int64_t count) -> std::vector<torch::Tensor> {
    auto x = frames_of(whole.narrow(0, first * shift, (count - 1) * shift + len), len, shift, count);
    x = x - x.mean(1, true);
    auto spec = torch::fft::rfft(x * window.unsqueeze(0), nfft, 1);
    auto power = torch::real(spec).square() + torch::imag(spec).square();  // T x bins
    auto amplitude = power.sqrt().contiguous();
    auto acf = torch::fft::irfft(power, nfft, 1).narrow(1, 0, max_lag + 1);
    auto energy = acf.select(1, 0).clone();  // T
    auto norm = (acf / energy.clamp_min(1e-20).unsqueeze(1) / window_acf).clamp(-1.0, 1.0).contiguous();
    auto shs = torch::mm(amplitude.narrow(1, 0, used), shs_weights).contiguous();  // T x G
    return {amplitude, energy, norm, shs};
  });
  track.amplitude = per_frame[0];
  const auto energy = per_frame[1];
  const auto norm = per_frame[2];
  const auto shs = per_frame[3];

  // Candidates: the largest local maxima of the SHS curve.
  const int64_t k_cand = std::min<int64_t>(o.candidates(), grid);
  auto left = torch::constant_pad_nd(shs.narrow(1, 0, grid - 1), {1, 0}, -1.0);
  auto right = torch::constant_pad_nd(shs.narrow(1, 1, grid - 1), {0, 1}, -1.0);
  auto peaks = torch::where((shs > left) & (shs >= right), shs, torch::full_like(shs, -1.0));
  torch::Tensor cand_val, cand_idx;
  std::tie(cand_val, cand_idx) = peaks.topk(k_cand, 1);
  cand_val = cand_val.contiguous();
  cand_idx = cand_idx.contiguous();

  const auto sa = shs.accessor<float, 2>();
  const auto cv = cand_val.accessor<float, 2>();
  const auto ci = cand_idx.accessor<int64_t, 2>();
  const auto en = energy.accessor<float, 1>();
  const float* acf_rows = norm.data_ptr<float>();
  const int64_t acf_stride = norm.size(1);

  // Candidate frequencies (parabolic refinement on the log grid) and scores.
  std::vector<double> cf(frames * k_cand, 0.0), cs(frames * k_cand, -1.0), cr(frames * k_cand, 0.0);
  std::vector<char> voiced(frames, 0);
  double max_energy = 0.0;
  for (int64_t t = 0; t < frames; ++t) max_energy = std::max(max_energy, static_cast<double>(en[t]));
  const double floor_energy = max_energy * std::pow(10.0, -o.silence_db() / 10.0);
  for (int64_t t = 0; t < frames; ++t) {
    const double best = cv[t][0];
    double best_r = 0.0;
    for (int64_t c = 0; c < k_cand; ++c) {
      if (cv[t][c] <= 0.0f) continue;
      const int64_t g = ci[t][c];
      double offset = 0.0;
      if (g > 0 && g < grid - 1) {
        const double ym = sa[t][g - 1], y0 = sa[t][g], yp = sa[t][g + 1];
        const double den = ym - 2.0 * y0 + yp;
        if (den < 0.0) offset = std::clamp(0.5 * (ym - yp) / den, -0.5, 0.5);
      }
      const double hz = o.min_f0_hz() * std::pow(2.0, (static_cast<double>(g) + offset) / ppo);
      const size_t i = static_cast<size_t>(t * k_cand + c);
      cf[i] = hz;
      cs[i] = best > 0.0 ? cv[t][c] / best : 0.0;
      cr[i] = acf_at(acf_rows + t * acf_stride, acf_stride, rate / hz);
      best_r = std::max(best_r, cr[i]);
    }
    voiced[t] = best > 0.0 && en[t] > 0.0f && en[t] >= floor_energy && best_r >= o.voicing_threshold();
  }

  // Viterbi over the candidates of each voiced run: local score = SHS score
  // relative to the frame's best plus the autocorrelation, minus an octave-jump
  // cost between consecutive frames.
  auto f0 = track.f0_hz.accessor<float, 1>();
  auto peak = track.acf_peak.accessor<float, 1>();
  for (int64_t a = 0; a < frames;) {
    if (!voiced[a]) { ++a; continue; }
    int64_t b = a;
    while (b < frames && voiced[b]) ++b;
    const int64_t len_run = b - a;
    std::vector<double> score(len_run * k_cand, -1e30);
    std::vector<int64_t> back(len_run * k_cand, 0);
    auto local = [&](int64_t t, int64_t c) {
      const size_t i = static_cast<size_t>(t * k_cand + c);
      return cs[i] < 0.0 ? -1e30 : cs[i] + cr[i];
    };
    for (int64_t c = 0; c < k_cand; ++c) score[c] = local(a, c);
    for (int64_t t = 1; t < len_run; ++t) {
      for (int64_t c = 0; c < k_cand; ++c) {
        const double l = local(a + t, c);
        if (l <= -1e29) continue;
        double best = -1e30;
        int64_t arg = 0;
        for (int64_t p = 0; p < k_cand; ++p) {
          const double prev = score[(t - 1) * k_cand + p];
          if (prev <= -1e29) continue;
          const double jump = std::abs(std::log2(cf[(a + t) * k_cand + c] / cf[(a + t - 1) * k_cand + p]));
          const double s = prev - o.octave_jump_cost() * jump;
          if (s > best) { best = s; arg = p; }
        }
        score[t * k_cand + c] = best + l;
        back[t * k_cand + c] = arg;
      }
    }
    int64_t c = 0;
    for (int64_t q = 1; q < k_cand; ++q)
      if (score[(len_run - 1) * k_cand + q] > score[(len_run - 1) * k_cand + c]) c = q;
    for (int64_t t = len_run - 1; t >= 0; --t) {
      const size_t i = static_cast<size_t>((a + t) * k_cand + c);
      f0[a + t] = static_cast<float>(cf[i]);
      peak[a + t] = static_cast<float>(std::max(0.0, cr[i]));
      c = back[t * k_cand + c];
    }
    a = b;
  }
  return track;
}

torch::Tensor semitones_from_27_5(const torch::Tensor& f0_hz) {
  auto st = 12.0 * torch::log2(f0_hz.clamp_min(1e-6) / 27.5);
  return torch::where(f0_hz > 0, st, torch::zeros_like(st));
}

std::vector<Period> mark_periods(const torch::Tensor& wave, int64_t sample_rate, const torch::Tensor& f0_hz) {
  std::vector<Period> periods;
  const int64_t len = samples_of_ms(60.0, sample_rate);
  const int64_t shift = samples_of_ms(10.0, sample_rate);
  const int64_t frames = f0_hz.size(0);
  const auto w = wave.contiguous();
  const float* x = w.data_ptr<float>();
  const int64_t n = w.size(0);
  const auto f0 = f0_hz.contiguous();
  const float* fp = f0.data_ptr<float>();
  const double rate = static_cast<double>(sample_rate);
  auto period_at = [&](double pos, double fallback) {
    const auto k = std::clamp<int64_t>(std::llround((pos - 0.5 * static_cast<double>(len)) / static_cast<double>(shift)), 0, frames - 1);
    return fp[k] > 0.0f ? rate / fp[k] : fallback;
  };
  for (int64_t a = 0; a < frames;) {
    if (fp[a] <= 0.0f) { ++a; continue; }
    int64_t b = a;
    while (b < frames && fp[b] > 0.0f) ++b;
    const int64_t begin = a * shift;
    const int64_t end = std::min(n, (b - 1) * shift + len);
    double period = rate / fp[a];
    // First period start: the largest sample of the first period.
    int64_t p = begin;
    for (int64_t i = begin; i < std::min(end, begin + static_cast<int64_t>(period)); ++i)
      if (x[i] > x[p]) p = i;
    double pos = static_cast<double>(p);
    while (true) {
      period = period_at(pos + 0.5 * period, period);
      // Match 60 % of a period: the response to one glottal pulse, before the
      // next one (up to 25 % later) enters the window.
      const auto m = static_cast<int64_t>(std::lround(0.6 * period));
      const auto lag_lo = static_cast<int64_t>(std::floor(0.75 * period));
      const auto lag_hi = static_cast<int64_t>(std::ceil(1.25 * period));
      const auto start = static_cast<int64_t>(std::lround(pos));
      if (m < 2 || start + lag_hi + m + 1 > end) break;
      double e0 = 0.0;
      for (int64_t i = 0; i < m; ++i) e0 += static_cast<double>(x[start + i]) * x[start + i];
      std::vector<double> ncc(static_cast<size_t>(lag_hi - lag_lo + 1), -2.0);
      int64_t best = -1;
      for (int64_t lag = lag_lo; lag <= lag_hi; ++lag) {
        double c = 0.0, e1 = 0.0;
        const float* u = x + start;
        const float* v = x + start + lag;
        for (int64_t i = 0; i < m; ++i) {
          c += static_cast<double>(u[i]) * v[i];
          e1 += static_cast<double>(v[i]) * v[i];
        }
        const double r = (e0 > 0.0 && e1 > 0.0) ? c / std::sqrt(e0 * e1) : 0.0;
        ncc[static_cast<size_t>(lag - lag_lo)] = r;
        if (best < 0 || r > ncc[static_cast<size_t>(best - lag_lo)]) best = lag;
      }
      double lag = static_cast<double>(best);
      if (best > lag_lo && best < lag_hi) {
        const double ym = ncc[static_cast<size_t>(best - lag_lo - 1)], y0 = ncc[static_cast<size_t>(best - lag_lo)],
                     yp = ncc[static_cast<size_t>(best - lag_lo + 1)];
        const double den = ym - 2.0 * y0 + yp;
        if (den < 0.0) lag += std::clamp(0.5 * (ym - yp) / den, -0.5, 0.5);
      }
      // Peak-to-peak amplitude over the first 85 % of the period: the period
      // starts at a peak, and the next period's peak must not enter.
      float hi = x[start], lo = x[start];
      const auto span = std::max<int64_t>(1, static_cast<int64_t>(0.85 * lag));
      for (int64_t i = start; i < start + span; ++i) { hi = std::max(hi, x[i]); lo = std::min(lo, x[i]); }
      periods.push_back({pos, lag, static_cast<double>(hi - lo)});
      pos += lag;
      period = lag;
    }
    a = b;
  }
  return periods;
}

std::pair<size_t, size_t> periods_in_frame(const std::vector<Period>& periods, int64_t sample_rate, int64_t k) {
  const double begin = static_cast<double>(k * samples_of_ms(10.0, sample_rate));
  const double end = begin + static_cast<double>(samples_of_ms(60.0, sample_rate));
  auto first = std::lower_bound(periods.begin(), periods.end(), begin,
                                [](const Period& p, double v) { return p.start < v; });
  auto last = first;
  while (last != periods.end() && last->start + last->length <= end) ++last;
  return {static_cast<size_t>(first - periods.begin()), static_cast<size_t>(last - periods.begin())};
}

torch::Tensor per_voiced_frame(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz,
                               const std::function<double(size_t, size_t)>& measure) {
  const int64_t frames = f0_hz.size(0);
  auto out = torch::zeros({frames});
  auto o = out.accessor<float, 1>();
  const auto f0 = f0_hz.contiguous();
  const float* fp = f0.data_ptr<float>();
  for (int64_t k = 0; k < frames; ++k) {
    if (fp[k] <= 0.0f) continue;
    auto [a, b] = periods_in_frame(periods, sample_rate, k);
    if (b < a + 2) continue;
    const double v = measure(a, b);
    if (std::isfinite(v)) o[k] = static_cast<float>(v);
  }
  return out;
}

torch::Tensor jitter_local(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz) {
  return per_voiced_frame(periods, sample_rate, f0_hz, [&](size_t a, size_t b) {
    double diff = 0.0, sum = 0.0;
    for (size_t i = a; i < b; ++i) {
      sum += periods[i].length;
      // Only consecutive periods (no gap between them) are compared.
      if (i > a) diff += std::abs(periods[i].length - periods[i - 1].length);
    }
    return (diff / static_cast<double>(b - a - 1)) / (sum / static_cast<double>(b - a));
  });
}

}  // namespace crnn::audio::egemaps

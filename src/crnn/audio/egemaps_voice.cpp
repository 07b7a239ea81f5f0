#include "crnn/audio/egemaps_voice.h"

#include <algorithm>
#include <cmath>

namespace crnn::audio::egemaps {

torch::Tensor shimmer_local_db(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz) {
  return per_voiced_frame(periods, sample_rate, f0_hz, [&](size_t a, size_t b) {
    double sum = 0.0;
    int64_t count = 0;
    for (size_t i = a + 1; i < b; ++i) {
      const double p = periods[i - 1].amplitude, q = periods[i].amplitude;
      if (p <= 0.0 || q <= 0.0) continue;
      sum += std::abs(20.0 * std::log10(q / p));
      ++count;
    }
    return count > 0 ? sum / static_cast<double>(count) : std::nan("");
  });
}

torch::Tensor hnr_db(const PitchTrack& p) {
  auto r = p.acf_peak.clamp(1e-3, 1.0 - 1e-6);
  auto h = 10.0 * (r / (1.0 - r)).log10();
  return torch::where(p.f0_hz > 0, h, torch::zeros_like(h));
}

double harmonic_level_db(const PitchTrack& p, int64_t t, double hz) {
  const double f0 = p.f0_hz.data_ptr<float>()[t];
  if (f0 <= 0.0) return 0.0;
  const double h = std::max(1.0, std::round(hz / f0)) * f0;
  const int64_t bins = p.amplitude.size(1);
  const double pos = std::clamp(h / p.bin_hz, 0.0, static_cast<double>(bins - 2));
  const auto i = static_cast<int64_t>(pos);
  const double f = pos - static_cast<double>(i);
  const float* row = p.amplitude.data_ptr<float>() + t * bins;
  const double level = (1.0 - f) * row[i] + f * row[i + 1];
  return 20.0 * std::log10(std::max(1e-10, level));
}

torch::Tensor h1_h2_db(const PitchTrack& p) {
  const int64_t frames = p.f0_hz.size(0);
  auto out = torch::zeros({frames});
  auto o = out.accessor<float, 1>();
  auto f0 = p.f0_hz.accessor<float, 1>();
  for (int64_t t = 0; t < frames; ++t) {
    if (f0[t] <= 0.0f) continue;
    o[t] = static_cast<float>(harmonic_level_db(p, t, f0[t]) - harmonic_level_db(p, t, 2.0 * f0[t]));
  }
  return out;
}

torch::Tensor h1_a3_db(const PitchTrack& p, const torch::Tensor& f3_hz) {
  const int64_t frames = p.f0_hz.size(0);
  auto out = torch::zeros({frames});
  auto o = out.accessor<float, 1>();
  auto f0 = p.f0_hz.accessor<float, 1>();
  const auto f3c = f3_hz.contiguous();
  auto f3 = f3c.accessor<float, 1>();
  for (int64_t t = 0; t < frames; ++t) {
    if (f0[t] <= 0.0f || f3[t] <= 0.0f) continue;
    o[t] = static_cast<float>(harmonic_level_db(p, t, f0[t]) - harmonic_level_db(p, t, f3[t]));
  }
  return out;
}

}  // namespace crnn::audio::egemaps

#pragma once
// Synthetic vowels with known truth for the eGeMAPS tests (the "fixture
// generator": the signal is made here, in C++, so no audio file is committed).
//
// A train of Rosenberg glottal pulses (Rosenberg 1971, "Effect of glottal pulse
// shape on the quality of natural vowels", JASA 49: open phase 40 % and closing
// phase 16 % of the mean period T0), differentiated (lip radiation), through a
// cascade of two-pole formant resonators. Pulse i starts T_i = T0 (1 + jitter *
// s_i) after pulse i-1, s_i alternating +1 / -1; every pulse has the same shape
// (scaled by T0, not by T_i), so the interval between glottal closures is T_i
// and the true local jitter is mean |T_i - T_{i-1}| / mean T_i (returned,
// computed from the periods made).
//
//   crnn::test::Vowel v;  v.f0 = 120; v.formants = {700, 1220, 2600};
//   auto made = crnn::test::synth_vowel(v);   // made.wave: 16 kHz floats, made.jitter: truth
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace crnn::test {

struct Vowel {
  double f0 = 120.0;                                      // Hz
  double jitter = 0.0;                                    // relative period perturbation (alternating)
  double shimmer = 0.0;                                   // relative amplitude perturbation (alternating)
  std::vector<double> formants = {700.0, 1220.0, 2600.0};  // Hz
  std::vector<double> bandwidths = {80.0, 90.0, 120.0};   // Hz
  double seconds = 1.0;
  int rate = 16000;
  double peak = 0.5;   // output peak amplitude
  double noise = 0.0;  // white noise standard deviation added after scaling
  unsigned seed = 1;
};

struct SynthVowel {
  std::vector<float> wave;
  std::vector<double> periods;  // seconds
  double jitter = 0.0;          // true local jitter of the periods made
};

inline double rosenberg(double phase) {  // phase in [0, 1)
  const double tp = 0.40, tn = 0.16;
  if (phase < tp) return 0.5 * (1.0 - std::cos(M_PI * phase / tp));
  if (phase < tp + tn) return std::cos(0.5 * M_PI * (phase - tp) / tn);
  return 0.0;
}

inline SynthVowel synth_vowel(const Vowel& v) {
  SynthVowel out;
  const auto n = static_cast<int64_t>(v.seconds * v.rate);
  std::vector<double> source(static_cast<size_t>(n), 0.0);
  // Period boundaries in seconds.
  std::vector<double> starts = {0.0};
  std::vector<double> gains;
  for (int i = 0; starts.back() < v.seconds; ++i) {
    const double sign = (i % 2 == 0) ? 1.0 : -1.0;
    const double t = (1.0 + v.jitter * sign) / v.f0;
    out.periods.push_back(t);
    gains.push_back(1.0 + v.shimmer * sign);
    starts.push_back(starts.back() + t);
  }
  size_t p = 0;
  double prev = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const double t = static_cast<double>(k) / v.rate;
    while (p + 1 < starts.size() && t >= starts[p + 1]) ++p;
    const double g = p < gains.size() ? gains[p] : 1.0;
    const double u = g * rosenberg(std::min(0.999, (t - starts[p]) * v.f0));
    source[static_cast<size_t>(k)] = u - prev;  // lip radiation: first difference
    prev = u;
  }
  // Formant resonators, unity gain at DC.
  for (size_t f = 0; f < v.formants.size(); ++f) {
    const double r = std::exp(-M_PI * v.bandwidths[f] / v.rate);
    const double c = 2.0 * r * std::cos(2.0 * M_PI * v.formants[f] / v.rate);
    const double gain = 1.0 - c + r * r;
    double y1 = 0.0, y2 = 0.0;
    for (auto& x : source) {
      const double y = gain * x + c * y1 - r * r * y2;
      y2 = y1;
      y1 = y;
      x = y;
    }
  }
  double peak = 0.0;
  for (double x : source) peak = std::max(peak, std::abs(x));
  std::mt19937 rng(v.seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  out.wave.resize(source.size());
  for (size_t k = 0; k < source.size(); ++k)
    out.wave[k] = static_cast<float>(source[k] / peak * v.peak + (v.noise > 0 ? v.noise * noise(rng) : 0.0));
  // True local jitter over the periods that lie inside the signal.
  double diff = 0.0, sum = 0.0;
  size_t m = 0;
  for (size_t i = 0; i + 1 < starts.size() && starts[i + 1] <= v.seconds; ++i) {
    sum += out.periods[i];
    if (i > 0) diff += std::abs(out.periods[i] - out.periods[i - 1]);
    ++m;
  }
  out.jitter = m > 1 ? (diff / static_cast<double>(m - 1)) / (sum / static_cast<double>(m)) : 0.0;
  return out;
}

}  // namespace crnn::test

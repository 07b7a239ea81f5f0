#include "crnn/audio/egemaps_spectral.h"

#include <algorithm>
#include <cmath>

namespace crnn::audio::egemaps {
namespace {

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Column index range [first, last] of the bins whose centre frequency lies in
// [lo, hi] Hz (clamped to the spectrum).
std::pair<int64_t, int64_t> bin_range(const PowerSpectrum& s, double lo, double hi) {
  const int64_t k = s.power.size(1);
  int64_t first = static_cast<int64_t>(std::ceil(lo / s.bin_hz - 1e-9));
  int64_t last = static_cast<int64_t>(std::floor(hi / s.bin_hz + 1e-9));
  first = std::max<int64_t>(0, std::min(first, k - 1));
  last = std::max(first, std::min(last, k - 1));
  return {first, last};
}

torch::Tensor band(const PowerSpectrum& s, double lo, double hi) {
  auto [a, b] = bin_range(s, lo, hi);
  return s.power.narrow(1, a, b - a + 1);
}

// Powers are floored before logs so that digital silence gives finite values.
constexpr double kPowerFloor = 1e-12;

}  // namespace

int64_t samples_of_ms(double ms, int64_t sample_rate) {
  return static_cast<int64_t>(static_cast<double>(sample_rate) * ms * 0.001 + 1e-9);
}

torch::Tensor frames_of(const torch::Tensor& wave, int64_t length, int64_t shift, int64_t frames) {
  TORCH_CHECK(wave.dim() == 1 && wave.is_contiguous(), "egemaps: expected a contiguous 1-D waveform");
  const int64_t need = frames == 0 ? 0 : (frames - 1) * shift + length;
  TORCH_CHECK(wave.size(0) >= need, "egemaps: ", frames, " frames of ", length, " samples need ", need,
              " samples, got ", wave.size(0));
  return wave.as_strided({frames, length}, {shift, 1});
}

std::vector<torch::Tensor> by_frame_blocks(
    int64_t frames, int64_t block, const std::function<std::vector<torch::Tensor>(int64_t first, int64_t count)>& f) {
  TORCH_CHECK(block >= 1, "egemaps: block_frames must be at least 1, got ", block);
  if (frames <= block) return f(0, frames);
  std::vector<std::vector<torch::Tensor>> parts;
  for (int64_t first = 0; first < frames; first += block) parts.push_back(f(first, std::min(block, frames - first)));
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < parts[0].size(); ++i) {
    std::vector<torch::Tensor> column;
    for (auto& p : parts) column.push_back(std::move(p[i]));
    out.push_back(torch::cat(column, 0));
  }
  return out;
}

PowerSpectrum short_frame_spectrum(const torch::Tensor& wave, int64_t sample_rate, int64_t frames) {
  const int64_t len = samples_of_ms(25.0, sample_rate);
  const int64_t shift = samples_of_ms(10.0, sample_rate);
  const int64_t need = frames == 0 ? 0 : (frames - 1) * shift + len;
  torch::Tensor w = wave.contiguous();
  if (w.size(0) < need) w = torch::constant_pad_nd(w, {0, need - w.size(0)}, 0.0).contiguous();
  auto x = frames_of(w, len, shift, frames);
  x = x * torch::hamming_window(len, /*periodic=*/false, 0.54, 0.46, torch::kFloat).unsqueeze(0);
  const int64_t n = next_power_of_two(len);
  PowerSpectrum s;
  auto spec = torch::fft::rfft(x, n, 1);
  s.power = (torch::real(spec).square() + torch::imag(spec).square()).contiguous();
  s.bin_hz = static_cast<double>(sample_rate) / static_cast<double>(n);
  return s;
}

torch::Tensor alpha_ratio(const PowerSpectrum& s) {
  auto low = band(s, 0.0, 1000.0 - 1e-6).sum(1);
  auto high = band(s, 1000.0, 5000.0).sum(1);
  return 10.0 * (high.clamp_min(kPowerFloor) / low.clamp_min(kPowerFloor)).log10();
}

torch::Tensor hammarberg_index(const PowerSpectrum& s) {
  auto low = std::get<0>(band(s, 0.0, 2000.0 - 1e-6).max(1));
  auto high = std::get<0>(band(s, 2000.0, 5000.0).max(1));
  return 10.0 * (low.clamp_min(kPowerFloor) / high.clamp_min(kPowerFloor)).log10();
}

torch::Tensor spectral_slope(const PowerSpectrum& s, double lo_hz, double hi_hz) {
  auto [a, b] = bin_range(s, lo_hz, hi_hz);
  auto y = 10.0 * s.power.narrow(1, a, b - a + 1).clamp_min(kPowerFloor).log10();
  auto f = torch::arange(a, b + 1, torch::kFloat) * s.bin_hz;
  auto fc = f - f.mean();
  return (y * fc.unsqueeze(0)).sum(1) / fc.square().sum();
}

torch::Tensor spectral_flux(const PowerSpectrum& s, double max_hz, double scale) {
  const int64_t t = s.power.size(0);
  if (t == 0) return torch::zeros({0});
  auto [a, b] = bin_range(s, 0.0, max_hz);
  auto mag = s.power.narrow(1, a, b - a + 1).sqrt();
  auto diff = torch::zeros({t});
  if (t > 1) diff.narrow(0, 1, t - 1).copy_((mag.narrow(0, 1, t - 1) - mag.narrow(0, 0, t - 1)).square().sum(1).sqrt() * scale);
  return diff;
}

torch::Tensor mfcc(const PowerSpectrum& s, int64_t count, int64_t num_bands) {
  const int64_t k = s.power.size(1);
  const double nyquist = s.bin_hz * static_cast<double>(k - 1);
  auto mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  const double m_lo = mel(20.0), m_hi = mel(std::min(8000.0, nyquist));
  auto f = torch::arange(k, torch::kDouble) * s.bin_hz;
  auto fm = 2595.0 * (1.0 + f / 700.0).log10();
  auto banks = torch::zeros({num_bands, k}, torch::kDouble);
  for (int64_t b = 0; b < num_bands; ++b) {
    const double l = m_lo + (m_hi - m_lo) * static_cast<double>(b) / static_cast<double>(num_bands + 1);
    const double c = m_lo + (m_hi - m_lo) * static_cast<double>(b + 1) / static_cast<double>(num_bands + 1);
    const double r = m_lo + (m_hi - m_lo) * static_cast<double>(b + 2) / static_cast<double>(num_bands + 1);
    banks[b] = torch::clamp_min(torch::min((fm - l) / (c - l), (r - fm) / (r - c)), 0.0);
  }
  auto energies = torch::mm(s.power.to(torch::kDouble), banks.t()).clamp_min(1e-8).log();  // T x B
  // DCT-II with the sqrt(2/B) scale, rows 1..count, then the HTK lifter.
  auto i = torch::arange(1, count + 1, torch::kDouble).unsqueeze(1);
  auto j = torch::arange(num_bands, torch::kDouble).unsqueeze(0) + 0.5;
  auto dct = std::sqrt(2.0 / static_cast<double>(num_bands)) * torch::cos(M_PI / static_cast<double>(num_bands) * i * j);
  auto lifter = 1.0 + 11.0 * torch::sin(M_PI * torch::arange(1, count + 1, torch::kDouble) / 22.0);
  return (torch::mm(energies, dct.t()) * lifter.unsqueeze(0)).to(torch::kFloat);
}

}  // namespace crnn::audio::egemaps

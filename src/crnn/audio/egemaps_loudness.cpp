#include "crnn/audio/egemaps_loudness.h"

#include <cmath>

namespace crnn::audio::egemaps {

double bark(double hz) { return 6.0 * std::asinh(hz / 600.0); }

torch::Tensor bark_banks(int64_t num_bins, double bin_hz, const LoudnessOptions& o) {
  TORCH_CHECK(o.num_bands() >= 1, "egemaps loudness: num_bands must be positive, got ", o.num_bands());
  const double nyquist = bin_hz * static_cast<double>(num_bins - 1);
  const double hi = std::min(o.high_hz(), nyquist);
  TORCH_CHECK(o.low_hz() >= 0.0 && o.low_hz() < hi, "egemaps loudness: band edges ", o.low_hz(), "..", hi,
              " Hz are empty");
  const double b_lo = bark(o.low_hz()), b_hi = bark(hi);
  const double step = (b_hi - b_lo) / static_cast<double>(o.num_bands() + 1);
  auto z = 6.0 * torch::asinh(torch::arange(num_bins, torch::kDouble) * bin_hz / 600.0);
  auto centres = b_lo + step * (torch::arange(o.num_bands(), torch::kDouble) + 1.0);
  auto tri = 1.0 - (z.unsqueeze(0) - centres.unsqueeze(1)).abs() / step;
  return tri.clamp_min(0.0);
}

torch::Tensor auditory_spectrum(const PowerSpectrum& s, const LoudnessOptions& o) {
  const int64_t k = s.power.size(1);
  auto banks = bark_banks(k, s.bin_hz, o);  // B x K
  // Equal-loudness weight at each band centre (Hermansky 1990, eq. 3).
  const double b_lo = bark(o.low_hz()), b_hi = bark(std::min(o.high_hz(), s.bin_hz * static_cast<double>(k - 1)));
  const double step = (b_hi - b_lo) / static_cast<double>(o.num_bands() + 1);
  auto centres_bark = b_lo + step * (torch::arange(o.num_bands(), torch::kDouble) + 1.0);
  auto f = 600.0 * torch::sinh(centres_bark / 6.0);
  auto w2 = (2.0 * M_PI * f).square();
  auto eql = (w2 + 56.8e6) * w2.square() / ((w2 + 6.3e6).square() * (w2 + 0.38e9));
  auto e = torch::mm(s.power.to(torch::kDouble), banks.t()) * eql.unsqueeze(0);
  return e.clamp_min(0.0).pow(o.compression()).to(torch::kFloat);
}

torch::Tensor loudness(const PowerSpectrum& s, const LoudnessOptions& o) {
  return auditory_spectrum(s, o).sum(1) * o.scale();
}

}  // namespace crnn::audio::egemaps

// Spectral-shape descriptors of egemaps_spectral.h / egemaps_loudness.h on
// signals whose answer is known from the definitions.
#include <gtest/gtest.h>

#include <cmath>

#include "crnn/audio/egemaps_loudness.h"
#include "crnn/audio/egemaps_spectral.h"

using namespace crnn::audio::egemaps;

namespace {
torch::Tensor tone(double hz, double amp = 0.5, int64_t n = 16000) {
  return amp * torch::sin(2 * M_PI * hz * torch::arange(n, torch::kDouble) / 16000.0).to(torch::kFloat);
}
}  // namespace

TEST(EgemapsSpectral, AlphaRatioAndHammarbergFollowTheBands) {
  // A 300 Hz tone has its energy below 1 kHz: alpha ratio (high over low) far
  // below 0 dB; a 3 kHz tone the opposite. Hammarberg (0-2k max over 2-5k max)
  // likewise.
  const auto low = short_frame_spectrum(tone(300), 16000, 10);
  const auto high = short_frame_spectrum(tone(3000), 16000, 10);
  EXPECT_LT(alpha_ratio(low).max().item<float>(), -30.0f);
  EXPECT_GT(alpha_ratio(high).min().item<float>(), 30.0f);
  EXPECT_GT(hammarberg_index(low).min().item<float>(), 30.0f);
  EXPECT_LT(hammarberg_index(high).max().item<float>(), -30.0f);
}

TEST(EgemapsSpectral, FluxIsZeroForAStationarySignalAndPositiveAtAChange) {
  auto x = torch::cat({tone(500, 0.5, 8000), tone(2000, 0.5, 8000)});
  const auto s = short_frame_spectrum(x, 16000, 90);
  const auto flux = spectral_flux(s);
  EXPECT_EQ(flux[0].item<float>(), 0.0f);
  // 500 Hz = bin 16 exactly and frames 10 ms apart hold whole periods: identical spectra.
  EXPECT_LT(flux.narrow(0, 1, 20).max().item<float>(), 1e-6 * flux.max().item<float>());
  EXPECT_GT(flux.narrow(0, 45, 5).max().item<float>(), 0.0f);
}

TEST(EgemapsSpectral, MfccOfWhiteLikeSpectrumIsSmallAndLoudnessGrowsWithLevel) {
  PowerSpectrum flat{torch::ones({2, 257}), 31.25};
  // A flat power spectrum has the same log energy per unit bandwidth; c1..c4 stay
  // small next to those of a tone.
  const auto m_flat = mfcc(flat, 4);
  const auto m_tone = mfcc(short_frame_spectrum(tone(1000), 16000, 2), 4);
  EXPECT_LT(m_flat.abs().max().item<float>(), m_tone.abs().max().item<float>());
  const auto quiet = loudness(short_frame_spectrum(tone(1000, 0.01), 16000, 3));
  const auto loud = loudness(short_frame_spectrum(tone(1000, 0.5), 16000, 3));
  // Power law: 50x the amplitude is 2500x the power, 2500^0.33 ~ 13.2x the loudness.
  EXPECT_NEAR((loud / quiet).mean().item<double>(), std::pow(2500.0, 0.33), 0.05);
}

TEST(EgemapsSpectral, SlopeOfALinearDbSpectrum) {
  // Power rising 10 dB per 1000 Hz gives a slope of 0.01 dB/Hz in any band.
  const auto f = torch::arange(257, torch::kFloat) * 31.25;
  PowerSpectrum s{torch::pow(10.0, f / 1000.0 - 3.0).unsqueeze(0), 31.25};
  EXPECT_NEAR(spectral_slope(s, 0, 500)[0].item<double>(), 0.01, 1e-4);
  EXPECT_NEAR(spectral_slope(s, 500, 1500)[0].item<double>(), 0.01, 1e-4);
}

#pragma once
/// \file egemaps_loudness.h
/// eGeMAPS v02 "Loudness": an estimate of perceived intensity from an
/// auditory spectrum (Eyben et al. 2016 §3.1.2; Hermansky 1990, "Perceptual
/// linear predictive (PLP) analysis of speech", JASA 87(4), §II.A–C):
/// the short-frame power spectrum is integrated in critical bands equally
/// spaced on the Bark scale, weighted by the equal-loudness curve and
/// compressed with the intensity-loudness power law (exponent 0.33); the
/// loudness of a frame is the sum over bands.
///
/// \code
///   auto spec = crnn::audio::egemaps::short_frame_spectrum(wave, 16000, frames);
///   auto loud = crnn::audio::egemaps::loudness(spec);   // T
/// \endcode

#include <torch/torch.h>

#include "crnn/audio/egemaps_spectral.h"

namespace crnn::audio::egemaps {

/// Options of the auditory spectrum behind loudness().
struct LoudnessOptions {
  TORCH_ARG(int64_t, num_bands) = 26;     ///< critical bands
  TORCH_ARG(double, low_hz) = 20.0;       ///< lower edge of the first band
  TORCH_ARG(double, high_hz) = 8000.0;    ///< upper edge of the last band (clamped to Nyquist)
  TORCH_ARG(double, compression) = 0.33;  ///< intensity-loudness power law exponent
  /// Loudness is the band sum times this. The published definition fixes the
  /// shape, not the unit; 1/17.5 puts crnn's values on openSMILE's scale (the
  /// median ratio over the 24 reference files; Pearson r does not depend on it).
  TORCH_ARG(double, scale) = 1.0 / 17.5;
};

/// Bark(f) = 6 asinh(f / 600) (Hermansky 1990, eq. 2).
double bark(double hz);

/// num_bands x K triangular critical-band weights on the Bark scale.
torch::Tensor bark_banks(int64_t num_bins, double bin_hz, const LoudnessOptions& options);

/// Auditory spectrum T x num_bands: equal-loudness weighted band powers raised
/// to `compression`.
torch::Tensor auditory_spectrum(const PowerSpectrum& s, const LoudnessOptions& options = {});

/// Loudness per frame (T): the sum of the auditory spectrum, times `scale`.
torch::Tensor loudness(const PowerSpectrum& s, const LoudnessOptions& options = {});

}  // namespace crnn::audio::egemaps

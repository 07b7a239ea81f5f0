#pragma once
/// \file egemaps_formants.h
/// eGeMAPS v02 formant descriptors (Eyben et al. 2016 §3.1.1, §3.1.3):
/// centre frequency and bandwidth of F1–F3 from the roots of a linear
/// prediction polynomial (autocorrelation method, Levinson–Durbin; Markel &
/// Gray 1976), and the level of the harmonic nearest each formant relative to
/// the first harmonic (F1–F3 "amplitudeLogRelF0").
///
/// Formant frequency and bandwidth are measured in every frame, voiced or
/// not; the relative amplitudes only in voiced frames (kUnvoicedLevel, -201
/// dB, elsewhere, as openSMILE writes them).
///
/// \code
///   auto f = crnn::audio::egemaps::lpc_formants(wave, 16000, frames);   // f.frequency: T x 3
/// \endcode

#include <torch/arg.h>
#include <torch/torch.h>

#include "crnn/audio/egemaps_pitch.h"

namespace crnn::audio::egemaps {

/// Relative formant amplitude written for unvoiced frames.
inline constexpr float kUnvoicedLevel = -201.0f;

struct FormantOptions {
  TORCH_ARG(double, frame_ms) = 25.0;      ///< Hamming-windowed frame every 10 ms
  TORCH_ARG(double, offset_ms) = 0.0;      ///< frame k starts at k * 10 ms + offset
  TORCH_ARG(int64_t, order) = 14;          ///< LPC order
  TORCH_ARG(double, preemphasis) = 0.97;   ///< y[n] = x[n] - c x[n-1] before windowing
  TORCH_ARG(double, min_hz) = 50.0;        ///< roots below this are not formants
  TORCH_ARG(double, max_bandwidth_hz) = 0.0;  ///< > 0: roots with wider bandwidth are skipped (wider than rate / 2: always)
  TORCH_ARG(int64_t, count) = 3;           ///< formants reported
};

struct Formants {
  torch::Tensor frequency;  ///< T x count, Hz (0 where fewer roots were found)
  torch::Tensor bandwidth;  ///< T x count, Hz
};

/// LPC coefficients a[0..order] (a[0] = 1) of every row of `frames`
/// (T x N, already windowed) by Levinson–Durbin on the autocorrelation.
torch::Tensor lpc(const torch::Tensor& frames, int64_t order);

/// Formants of the first `frames` frames of `wave` (zero-padded at the end if
/// short), analysed `block_frames` at a time (the result depends on it only up to float rounding).
Formants lpc_formants(const torch::Tensor& wave, int64_t sample_rate, int64_t frames,
                      const FormantOptions& options = {}, int64_t block_frames = kFrameBlock);

/// T x count: level of the harmonic nearest each formant minus the level of
/// the first harmonic (dB); kUnvoicedLevel where unvoiced or the formant is 0.
torch::Tensor formant_levels_rel_f0(const PitchTrack& pitch, const torch::Tensor& frequency);

}  // namespace crnn::audio::egemaps

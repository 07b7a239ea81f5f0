#pragma once
/// \file egemaps_pitch.h
/// eGeMAPS v02 frequency descriptors of 60 ms frames (Eyben et al. 2016
/// §3.1.1): fundamental frequency by subharmonic summation (Hermes 1988,
/// "Measurement of pitch by subharmonic summation", JASA 83(1)) with Viterbi
/// smoothing of the candidate track, F0 on a semitone scale from 27.5 Hz, and
/// local jitter from period lengths found by waveform matching.
///
/// Per frame: a Gaussian-windowed (sigma 0.4) 60 ms frame; its amplitude
/// spectrum is summed at the first `harmonics` multiples of every candidate F0
/// on a log-frequency grid, weighted by compression^(n-1) (SHS); the best
/// peaks are the candidates. A frame is voiced when the window-corrected
/// normalized autocorrelation at the candidate's period (Boersma 1993)
/// reaches `voicing_threshold` and its energy lies within `silence_db` of the
/// loudest frame. A Viterbi pass over the candidates of each voiced run
/// penalises octave jumps. Unvoiced frames get F0 = 0.
///
/// \code
///   auto p = crnn::audio::egemaps::track_pitch(wave, 16000, frames);
///   auto st = crnn::audio::egemaps::semitones_from_27_5(p.f0_hz);   // 0 where unvoiced
///   auto jit = crnn::audio::egemaps::jitter_local(wave, 16000, p.f0_hz);
/// \endcode

#include <torch/arg.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "crnn/audio/egemaps_spectral.h"

namespace crnn::audio::egemaps {

struct PitchOptions {
  TORCH_ARG(double, min_f0_hz) = 55.0;
  TORCH_ARG(double, max_f0_hz) = 1000.0;
  TORCH_ARG(int64_t, harmonics) = 15;          ///< subharmonics summed (Hermes: 15)
  TORCH_ARG(double, compression) = 0.84;       ///< weight h^(n-1) of the n-th harmonic (Hermes: 0.84)
  TORCH_ARG(double, max_spectrum_hz) = 5000.0;  ///< spectrum above this is ignored
  TORCH_ARG(int64_t, points_per_octave) = 48;  ///< log-frequency grid
  TORCH_ARG(int64_t, candidates) = 4;          ///< SHS peaks kept per frame
  TORCH_ARG(double, voicing_threshold) = 0.55;  ///< normalized autocorrelation for voicing
  TORCH_ARG(double, silence_db) = 35.0;        ///< frames this far below the loudest are unvoiced
  TORCH_ARG(double, octave_jump_cost) = 0.5;   ///< Viterbi cost per octave between frames
};

/// Per-frame pitch analysis of the 60 ms frames starting every 10 ms.
struct PitchTrack {
  torch::Tensor f0_hz;        ///< T, 0 where unvoiced
  torch::Tensor acf_peak;     ///< T, normalized autocorrelation at the F0 period (0 unvoiced)
  torch::Tensor amplitude;    ///< T x K amplitude spectrum of the Gaussian-windowed frames
  double bin_hz = 0.0;        ///< spacing of `amplitude`'s bins
};

/// The Gaussian window of eGeMAPS' 60 ms frames: exp(-0.5 ((n - (N-1)/2) / (sigma (N-1)/2))^2).
torch::Tensor gauss_window(int64_t length, double sigma = 0.4);

/// Pitch of the first `frames` 60 ms frames of `wave` (which must hold them),
/// their spectra computed `block_frames` at a time (the result depends on it only up to float rounding).
PitchTrack track_pitch(const torch::Tensor& wave, int64_t sample_rate, int64_t frames,
                       const PitchOptions& options = {}, int64_t block_frames = kFrameBlock);

/// 12 log2(f0 / 27.5) where f0 > 0, else 0.
torch::Tensor semitones_from_27_5(const torch::Tensor& f0_hz);

/// One pitch period found in the waveform.
struct Period {
  double start = 0.0;      ///< first sample of the period
  double length = 0.0;     ///< samples (fractional)
  double amplitude = 0.0;  ///< peak-to-peak amplitude over the first 85 % of the period
};

/// Pitch periods of every voiced run of frames, found on the continuous
/// signal: the first period starts at the largest sample of the run's first
/// period; each next start is the lag in [0.75, 1.25] T0 (T0 from the F0 of
/// the frame centred nearest) whose waveform best matches the previous period
/// over the first 60 % of the period (normalized cross-correlation with
/// parabolic refinement). Sorted by start.
std::vector<Period> mark_periods(const torch::Tensor& wave, int64_t sample_rate, const torch::Tensor& f0_hz);

/// Indices [first, last) of the periods lying wholly inside 60 ms frame k.
std::pair<size_t, size_t> periods_in_frame(const std::vector<Period>& periods, int64_t sample_rate, int64_t k);

/// A per-frame measure over the periods in each voiced frame (f0_hz > 0)
/// holding at least two of them: `measure(a, b)` gets the range [a, b) of
/// `periods` and returns the frame's value (NaN: none); other frames are 0.
/// Jitter and shimmer are both computed this way.
torch::Tensor per_voiced_frame(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz,
                               const std::function<double(size_t a, size_t b)>& measure);

/// Local jitter per 60 ms frame: mean |T_i - T_{i-1}| over mean T_i of the
/// consecutive periods inside the frame (a fraction, not %); 0 where unvoiced
/// or where fewer than 2 periods lie in the frame.
torch::Tensor jitter_local(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz);

}  // namespace crnn::audio::egemaps

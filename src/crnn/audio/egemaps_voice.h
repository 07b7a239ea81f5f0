#pragma once
/// \file egemaps_voice.h
/// eGeMAPS v02 voice-quality descriptors of 60 ms frames (Eyben et al. 2016
/// §3.1.1–3.1.3): local shimmer in dB, harmonics-to-noise ratio from the
/// autocorrelation, and the harmonic differences H1–H2 and H1–A3. All are 0
/// in unvoiced frames (F0 = 0).
///
/// \code
///   auto p = crnn::audio::egemaps::track_pitch(wave, 16000, frames);
///   auto periods = crnn::audio::egemaps::mark_periods(wave, 16000, p.f0_hz);
///   auto shimmer = crnn::audio::egemaps::shimmer_local_db(periods, 16000, p.f0_hz);
///   auto hnr = crnn::audio::egemaps::hnr_db(p);
/// \endcode

#include <torch/torch.h>

#include <vector>

#include "crnn/audio/egemaps_pitch.h"

namespace crnn::audio::egemaps {

/// Local shimmer per frame: mean |20 log10(A_i / A_{i-1})| over consecutive
/// periods inside the frame (dB); 0 where unvoiced or fewer than 2 periods.
torch::Tensor shimmer_local_db(const std::vector<Period>& periods, int64_t sample_rate, const torch::Tensor& f0_hz);

/// HNR from the normalized autocorrelation r at the F0 period:
/// 10 log10(r / (1 - r)) dB, r limited to [1e-3, 1 - 1e-6]; 0 where unvoiced.
torch::Tensor hnr_db(const PitchTrack& pitch);

/// Level (dB, 20 log10 of the amplitude spectrum of the Gaussian-windowed 60 ms
/// frame) of the harmonic nearest `hz` in frame t: the largest bin within
/// ±F0/2 of the harmonic number round(hz / F0) times F0.
double harmonic_level_db(const PitchTrack& pitch, int64_t t, double hz);

/// H1 – H2 (dB) per frame: level of the first minus the second harmonic.
torch::Tensor h1_h2_db(const PitchTrack& pitch);

/// H1 – A3 (dB) per frame: level of the first harmonic minus that of the
/// harmonic nearest the third formant (f3_hz, T); 0 where unvoiced or F3 = 0.
torch::Tensor h1_a3_db(const PitchTrack& pitch, const torch::Tensor& f3_hz);

}  // namespace crnn::audio::egemaps

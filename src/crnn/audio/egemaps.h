#pragma once
/// \file egemaps.h
/// The 25 eGeMAPS v02 low-level descriptors per 10 ms frame (SPEC §4; Eyben
/// et al. 2016, "The Geneva Minimalistic Acoustic Parameter Set (GeMAPS) for
/// Voice Research and Affective Computing", IEEE TAC 7(2), §3 and appendix),
/// implemented in crnn from the published definitions:
///
///   loudness                      egemaps_loudness.h
///   alpha ratio, Hammarberg, slopes, flux, MFCC 1–4   egemaps_spectral.h
///   F0 (semitones from 27.5 Hz), jitter               egemaps_pitch.h
///   shimmer, HNR, H1–H2, H1–A3                        egemaps_voice.h
///   F1–F3 frequency, bandwidth, level rel. to H1      egemaps_formants.h
///   3-frame moving average (sma3 / sma3nz)            egemaps_smoothing.h
///
/// Frames: 60 ms windows every 10 ms for the pitch-synchronous descriptors
/// and 25 ms windows every 10 ms for the spectral ones, both starting at
/// k * 10 ms. An input of N samples has 1 + (N - 960) / 160 raw frames at 16
/// kHz (the whole 60 ms windows) and, smoothed (the default), one frame more,
/// as openSMILE's eGeMAPSv02 output. Voiced-only descriptors (F0, jitter,
/// shimmer, HNR, H1–H2, H1–A3) are 0 in unvoiced frames and the formant levels
/// -201; the smoothing of those ("sma3nz") averages non-zero values only.
///
/// \code
///   // with #include "crnn/audio/read_audio.h"
///   auto wave = crnn::audio::read_audio("utt.flac", 16000);
///   auto lld = crnn::audio::compute_egemaps(wave);                   // (T+1) x 25, smoothed
///   auto raw = crnn::audio::compute_egemaps(wave, crnn::audio::EgemapsOptions().smooth(false));
///   auto names = crnn::audio::egemaps_feature_names(true);           // "Loudness_sma3", ...
/// \endcode

#include <torch/arg.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "crnn/audio/egemaps_formants.h"
#include "crnn/audio/egemaps_pitch.h"

namespace crnn::audio {

/// Number of eGeMAPS v02 LLDs.
inline constexpr int64_t kEgemapsLlds = 25;

struct EgemapsOptions {
  /// Smoothed LLDs (sma3 / sma3nz, T + 1 frames) or raw ones (T frames).
  TORCH_ARG(bool, smooth) = true;
  /// The analysis rate (Hz): the rate of the waveform given to compute_egemaps
  /// (which does not resample), and the rate files are resampled to when read
  /// for eGeMAPS (`crnn features --kind egemaps`, read_audio).
  TORCH_ARG(int64_t, sample_rate) = 16000;
  TORCH_ARG(egemaps::PitchOptions, pitch) = {};
  TORCH_ARG(egemaps::FormantOptions, formants) = {};
  /// Frames whose spectra are computed at once: bounds the memory a long file
  /// takes (about 40 KB per frame in a block). The result depends on it only
  /// up to float rounding (blocks of different sizes batch the same per-frame work).
  TORCH_ARG(int64_t, block_frames) = egemaps::kFrameBlock;
};

/// Column names in openSMILE's order: "Loudness", "alphaRatio", ...,
/// "F3amplitudeLogRelF0", with "_sma3" / "_sma3nz" appended when `smoothed`.
std::vector<std::string> egemaps_feature_names(bool smoothed = true);

/// Raw frames of an N-sample input: 0 if N < one 60 ms window, else
/// 1 + (N - window) / shift.
int64_t egemaps_num_frames(int64_t num_samples, const EgemapsOptions& options = {});

/// The LLDs of a 1-D waveform (float, nominally in [-1, 1)): T x 25 float32
/// raw, (T + 1) x 25 smoothed. Short input: a waveform shorter than one 60 ms
/// window (960 samples at 16 kHz) gives an empty 0 x 25 tensor, not an error,
/// as compute_fbank does for a frame. Never NaN or Inf for finite input in
/// [-1, 1].
torch::Tensor compute_egemaps(const torch::Tensor& waveform, const EgemapsOptions& options = {});

/// "egemaps-v02 smooth=true sample_rate=16000": the options that decide the
/// stored features, one line, recorded with the features and in models.
std::string describe(const EgemapsOptions& options);
/// Inverse of describe(); throws std::invalid_argument naming the bad part.
/// A trailing " resampler=…" is ignored.
EgemapsOptions parse_egemaps_description(const std::string& description);

/// Throws c10::Error for options no extractor can use (a sample rate outside
/// 8000..kMaxSampleRate Hz).
void check_egemaps_options(const EgemapsOptions& o);

/// The LLDs of an audio file: read_audio at the options' sample rate, then
/// compute_egemaps. Throws AudioError naming the file for unreadable audio and
/// for non-finite features. `audio_seconds` receives the duration read.
torch::Tensor egemaps_of_file(const std::string& path, const EgemapsOptions& options,
                              double* audio_seconds = nullptr);

}  // namespace crnn::audio

#pragma once
/// \file fbank.h
/// Kaldi-compatible log mel filterbank (SPEC §4).
///
/// `compute_fbank(wave, FbankOptions())` gives the same matrix as
/// `torchaudio.compliance.kaldi.fbank(wave * 32768, num_mel_bins=26, dither=0.0)`
/// (and Kaldi's `compute-fbank-feats --dither=0 --num-mel-bins=26`), computed
/// for all frames at once with tensor ops and one batched real FFT.
///
/// \code
///   // with #include "crnn/audio/read_audio.h"
///   auto wave = crnn::audio::read_audio("utt.flac");                  // [-1, 1), 16 kHz
///   auto feats = crnn::audio::compute_fbank(wave);                     // frames x 26
///   auto f40 = crnn::audio::compute_fbank(
///       wave, crnn::audio::FbankOptions().num_bins(40).window(crnn::audio::WindowType::Hamming));
/// \endcode

#include <torch/arg.h>
#include <torch/torch.h>

#include <cfloat>
#include <cstdint>
#include <string>
#include <vector>

#include "crnn/audio/read_audio.h"  // kMaxSampleRate

namespace crnn::audio {

/// Analysis window applied to each frame (Kaldi's `--window-type`).
enum class WindowType {
  Povey,        ///< Hann (symmetric) raised to 0.85: Kaldi's default
  Hamming,      ///< 0.54 - 0.46 cos(2 pi n / (N-1))
  Hanning,      ///< 0.5 - 0.5 cos(2 pi n / (N-1))
  Rectangular,  ///< all ones
  Blackman,     ///< 0.42 - 0.5 cos(2 pi n/(N-1)) + 0.08 cos(4 pi n/(N-1))
};

/// "povey" | "hamming" | "hanning" | "rectangular" | "blackman" -> WindowType.
/// TORCH_CHECK-fails on anything else.
WindowType parse_window_type(const std::string& name);
/// Inverse of parse_window_type.
std::string to_string(WindowType window);

/// Options of the Kaldi filterbank; defaults are SPEC §4 (= Kaldi / torchaudio
/// defaults with 26 bins and no dither). Setters chain:
/// `FbankOptions().num_bins(40).sample_rate(8000)`.
struct FbankOptions {
  TORCH_ARG(int64_t, num_bins) = 26;
  TORCH_ARG(double, frame_length_ms) = 25.0;
  TORCH_ARG(double, frame_shift_ms) = 10.0;
  TORCH_ARG(WindowType, window) = WindowType::Povey;
  /// y[n] = x[n] - c x[n-1] inside each frame, x[-1] := x[0] (0 disables).
  TORCH_ARG(double, preemphasis) = 0.97;
  /// Subtract each frame's mean before pre-emphasis and windowing.
  TORCH_ARG(bool, remove_dc_offset) = true;
  /// true: only frames that fit entirely (1 + (N - len) / shift frames);
  /// false: Kaldi's reflection padding, round(N / shift) frames.
  TORCH_ARG(bool, snip_edges) = true;
  /// Lower edge of the first mel triangle, Hz.
  TORCH_ARG(double, low_freq) = 20.0;
  /// Upper edge of the last triangle, Hz; 0 = Nyquist, negative = Nyquist + high_freq.
  TORCH_ARG(double, high_freq) = 0.0;
  /// Power spectrum |X|^2 (true) or magnitude |X| (false).
  TORCH_ARG(bool, use_power) = true;
  /// Energies are floored at this value before the natural log.
  TORCH_ARG(double, log_floor) = FLT_EPSILON;
  /// Zero-pad each frame to the next power of two before the FFT (400 -> 512).
  TORCH_ARG(bool, round_to_power_of_two) = true;
  /// Sample rate of the waveform passed to compute_fbank, Hz.
  TORCH_ARG(int64_t, sample_rate) = 16000;
  /// The waveform is multiplied by this before analysis. Kaldi works on raw
  /// int16 sample values while read_audio returns int16/32768, so the default
  /// 32768 reproduces Kaldi's absolute log-energies (the scale shifts every
  /// log value by 2 ln(32768) ~ 20.8 with use_power, and changes how the
  /// FLT_EPSILON floor bites).
  TORCH_ARG(double, input_scale) = 32768.0;
};

/// One line that records every option, stored with extracted features so a
/// feature file can be checked against the options of a later run, e.g.
/// "kaldi-fbank num_bins=26 frame_length_ms=25 ... input_scale=32768".
std::string describe(const FbankOptions& options);
/// Inverse of describe(): the options a feature file or model file records.
/// Throws std::invalid_argument naming the unreadable part or the option no
/// extractor could use (as compute_fbank checks them). A trailing
/// " resampler=…" (added by `crnn features`) is ignored.
FbankOptions parse_description(const std::string& description);

/// compute_fbank works through longer inputs this many frames at a time (the
/// same rows, a block's memory): 40.96 s at 10 ms.
inline constexpr int64_t kFbankBlockFrames = 4096;

/// Samples per frame and per shift, as Kaldi rounds them: int(rate * ms / 1000).
int64_t frame_length_samples(const FbankOptions& options);
int64_t frame_shift_samples(const FbankOptions& options);

/// Number of frames compute_fbank returns for `num_samples` samples.
/// With snip_edges: 0 if num_samples < frame length, else
/// 1 + (num_samples - frame_length) / frame_shift.
int64_t num_frames(int64_t num_samples, const FbankOptions& options);

/// The Kaldi mel filterbank matrix, shape num_bins x (fft_size / 2 + 1),
/// float32: triangles on mel(f) = 1127 ln(1 + f / 700), zero in the last
/// (Nyquist) column, as Kaldi and torchaudio have it.
torch::Tensor mel_banks(const FbankOptions& options);

/// Log mel filterbank of a 1-D waveform (float, nominally in [-1, 1)).
/// Returns frames x num_bins float32 on the CPU.
///
/// Short input: with snip_edges a waveform shorter than one frame (< 400
/// samples = 25 ms at 16 kHz) has no complete frame, and the result is an
/// empty 0 x num_bins tensor -- not an error (torchaudio raises here, Kaldi
/// returns an empty matrix). Callers decide what an utterance without frames
/// means; `crnn features` reports it as skipped.
torch::Tensor compute_fbank(const torch::Tensor& waveform,
                            const FbankOptions& options = FbankOptions());

/// The log mel filterbank of an audio file: read_audio at the options' sample
/// rate, then compute_fbank — what `crnn features` stores and `crnn predict`
/// classifies. Throws AudioError (naming the file) for audio read_audio refuses
/// (samples beyond ±kMaxWaveformPeak among them, so the features are finite).
/// A file shorter than one frame gives 0 frames, as
/// compute_fbank does. `audio_seconds`, when given, receives the duration read.
///
/// \code
///   auto feats = crnn::audio::fbank_of_file("utt.flac", crnn::audio::FbankOptions());
/// \endcode
torch::Tensor fbank_of_file(const std::string& path, const FbankOptions& options,
                            double* audio_seconds = nullptr);

/// "fbank_00", "fbank_01", ...: column names for a num_bins-wide matrix.
std::vector<std::string> fbank_feature_names(int64_t num_bins);

}  // namespace crnn::audio

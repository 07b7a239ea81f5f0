#pragma once
/// \file read_audio.h
/// Decoding audio files into the mono float waveform that the feature
/// extractors consume.
///
/// \code
///   torch::Tensor wave = crnn::audio::read_audio("utt.flac");        // 16 kHz mono
///   torch::Tensor wave8k = crnn::audio::read_audio("utt.wav", 8000);  // resampled
/// \endcode

#include <torch/torch.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace crnn::audio {

/// Any problem with an input audio file. `what()` names the file and the
/// problem ("file not found", "truncated or corrupt", ...), so callers can
/// report it verbatim.
class AudioError : public std::runtime_error {
 public:
  AudioError(std::string path, const std::string& problem);
  /// The file the error is about.
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// What the file header says, before any conversion.
struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  int64_t frames = 0;  ///< samples per channel; −1 when the header leaves it unknown (FLAC total 0)
  std::string format;  ///< e.g. "WAV (Microsoft) / Signed 16 bit PCM"
};

/// Reads only the header of `path`. Throws AudioError.
AudioInfo audio_info(const std::string& path);

/// Decodes `path` (WAV, FLAC or anything else libsndfile reads: any sample
/// rate, bit depth and channel count) into a 1-D float32 tensor at
/// `target_rate`.
///
/// * Scale: integer PCM is divided by 2^(bits-1), so 16-bit input becomes
///   exactly int16 / 32768 and lies in [-1, 1) -- the convention of
///   torchaudio.load, which the Kaldi-compatible fbank relies on
///   (it multiplies by 32768 again).
/// * Channels are down-mixed to mono by averaging.
/// * If the file's rate differs from `target_rate`, it is resampled with
///   libsoxr at "high quality" (SOXR_HQ: 20-bit precision, linear phase).
///   The output has round(frames * target_rate / file_rate) samples.
///
/// Throws AudioError naming the file for: a missing file, a path that is not
/// a regular file, an unreadable file, an unsupported / unrecognised format
/// (e.g. a text file named .wav), a file without samples (zero-length), a header
/// rate outside kMinFileSampleRate..kMaxFileSampleRate, non-finite samples,
/// samples beyond ±kMaxWaveformPeak (peak_problem: integer PCM stored as
/// floats), a WAV header never finalized (data size 0, samples following), and
/// a truncated or corrupt file (fewer samples decoded than the header promises,
/// a WAV or AIFF data chunk shorter than its header says, or a decoder error).
torch::Tensor read_audio(const std::string& path, int target_rate = 16000);

/// Highest sample rate crnn computes at (Hz): the extractors' and read_audio's
/// target_rate limit; beyond it a rate is a damaged file or a typo, and it must
/// fit the int that audio readers take.
inline constexpr int64_t kMaxSampleRate = 1'000'000;

/// Header sample rates read_audio accepts (Hz): telephone-band 4 kHz to 768 kHz.
inline constexpr int kMinFileSampleRate = 4000;
inline constexpr int kMaxFileSampleRate = 768000;

/// Largest |sample| an in-memory waveform may reach: samples are floats in
/// [-1, 1) (what read_audio returns). Above this (+18 dBFS) the samples are
/// integer PCM passed without scaling, which would silently shift every log
/// mel energy by 2 ln 32768 and distort the eGeMAPS descriptors.
inline constexpr double kMaxWaveformPeak = 8.0;

/// Why samples whose largest magnitude is `peak` cannot be audio, or "" when
/// peak <= kMaxWaveformPeak: the one rule for files (read_audio) and in-memory
/// waveforms (waveform_problem).
std::string peak_problem(double peak);

/// Why an in-memory waveform (Python's crnn.features.*, Model.features,
/// infer::Classifier::features_of_waveform) cannot be turned into features,
/// or "" if it can: not on the CPU, not 1-D, not floating point (int16 PCM),
/// NaN or infinite samples, or a peak above kMaxWaveformPeak — each with what
/// to do about it.
std::string waveform_problem(const torch::Tensor& waveform);

/// Resamples a 1-D float32 waveform from `from_rate` to `to_rate` with libsoxr
/// (SOXR_HQ). Returns the input unchanged when the rates are equal.
///
/// \code
///   auto y = crnn::audio::resample(x, 48000, 16000);   // y.size(0) == x.size(0) / 3
/// \endcode
torch::Tensor resample(const torch::Tensor& waveform, int from_rate, int to_rate);

}  // namespace crnn::audio

#pragma once
/// \file egemaps_spectral.h
/// eGeMAPS v02 spectral-shape descriptors of short (25 ms) frames (Eyben et
/// al. 2016, IEEE TAC 7(2), §3.1.3 and appendix): alpha ratio, Hammarberg
/// index, spectral slopes 0–500 / 500–1500 Hz, spectral flux and MFCC 1–4.
///
/// All functions take the power spectrum of every frame at once (one batched
/// real FFT, see short_frame_spectrum) and return one value per frame.
///
/// \code
///   auto spec = crnn::audio::egemaps::short_frame_spectrum(wave, 16000, frames);
///   auto alpha = crnn::audio::egemaps::alpha_ratio(spec);          // T, dB
///   auto mfcc = crnn::audio::egemaps::mfcc(spec, 4);               // T x 4 (c1..c4)
/// \endcode

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace crnn::audio::egemaps {

/// Power spectra of frames: frames x (fft_size/2 + 1) float32, |X(k)|^2 of the
/// windowed frame, and the spacing of the bins in Hz.
struct PowerSpectrum {
  torch::Tensor power;  ///< T x K, |X|^2 (sample scale: waveform in [-1, 1))
  double bin_hz = 0.0;  ///< sample_rate / fft_size
};

/// Samples per frame of `ms` milliseconds at `sample_rate` (truncated).
int64_t samples_of_ms(double ms, int64_t sample_rate);

/// Frame k covers samples [k*shift, k*shift + length): the first `frames`
/// frames of `wave` (which must hold them) as a frames x length view.
torch::Tensor frames_of(const torch::Tensor& wave, int64_t length, int64_t shift, int64_t frames);

/// Frames analysed at once by default: per-frame spectra and windowed copies
/// then take memory for 10 s of audio, whatever the file's length.
inline constexpr int64_t kFrameBlock = 1000;

/// Per-frame work in consecutive blocks of at most `block` frames: `f(first,
/// count)` returns tensors whose dim 0 runs over frames [first, first + count),
/// and each one's blocks are concatenated. With 0 frames, f(0, 0) once.
std::vector<torch::Tensor> by_frame_blocks(
    int64_t frames, int64_t block, const std::function<std::vector<torch::Tensor>(int64_t first, int64_t count)>& f);

/// Power spectrum of the 25 ms Hamming-windowed frames starting every 10 ms
/// (frame k starts at sample k * 10 ms), zero-padded to the next power of
/// two (400 -> 512 samples at 16 kHz). `frames` may exceed the number of whole
/// frames in `wave`: the signal is zero-padded at the end.
PowerSpectrum short_frame_spectrum(const torch::Tensor& wave, int64_t sample_rate, int64_t frames);

/// Alpha ratio (dB): 10 log10 of the summed power in [1000, 5000] Hz over the
/// summed power below 1000 Hz. The paper names the bands 50–1000 Hz and 1–5 kHz
/// ("ratio of the summed energy from 50–1000 Hz and 1–5 kHz"); openSMILE's
/// values are high over low (negative for voiced speech), and agree best
/// (r 0.989 vs 0.979 raw, 24 reference files) when the low band starts at 0 Hz.
torch::Tensor alpha_ratio(const PowerSpectrum& s);

/// 10 log10 of the strongest bin in [0, 2000) Hz over the strongest bin in
/// [2000, 5000] Hz (Hammarberg index), dB.
torch::Tensor hammarberg_index(const PowerSpectrum& s);

/// Least-squares slope of the spectrum in [lo, hi] Hz against frequency in Hz
/// (eGeMAPS "slope0-500", "slope500-1500").
torch::Tensor spectral_slope(const PowerSpectrum& s, double lo_hz, double hi_hz);

/// Spectral flux: the Euclidean distance between the magnitude spectra of
/// consecutive frames over the bins in [0, max_hz] (the speech band the other
/// descriptors use), times `scale`; the first frame compares with itself (0).
/// The default scale, 0.0734, is the median ratio of openSMILE's values to
/// the unscaled distance over the 24 reference files (it sets the unit only).
torch::Tensor spectral_flux(const PowerSpectrum& s, double max_hz = 5000.0, double scale = 0.0734);

/// MFCC c1..c_count (c0 excluded) from `num_bands` HTK mel triangles over
/// [20 Hz, Nyquist], natural log, DCT-II and sinusoidal liftering (L = 22).
/// Returns T x count.
torch::Tensor mfcc(const PowerSpectrum& s, int64_t count = 4, int64_t num_bands = 26);

}  // namespace crnn::audio::egemaps

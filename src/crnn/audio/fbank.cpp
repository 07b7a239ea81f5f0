#include "crnn/audio/fbank.h"

#include <algorithm>

#include "crnn/audio/read_audio.h"
#include "crnn/util/text.h"

#include <sstream>
#include <stdexcept>

#include <fmt/core.h>

#include <cmath>
#include <utility>

namespace crnn::audio {
namespace {

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int64_t fft_size(const FbankOptions& o) {
  const int64_t len = frame_length_samples(o);
  return o.round_to_power_of_two() ? next_power_of_two(len) : len;
}

double mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

void check_options(const FbankOptions& o) {
  // Non-finite values first, and frame lengths bounded: the sample counts below
  // cast them to integers (1e300 ms would be undefined behaviour).
  for (auto [name, v] : {std::pair{"frame_length_ms", o.frame_length_ms()}, {"frame_shift_ms", o.frame_shift_ms()},
                         {"low_freq", o.low_freq()}, {"high_freq", o.high_freq()}, {"log_floor", o.log_floor()}})
    TORCH_CHECK(std::isfinite(v), "fbank: ", name, " must be a finite number, got ", v);
  for (auto [name, v] : {std::pair{"frame_length_ms", o.frame_length_ms()}, {"frame_shift_ms", o.frame_shift_ms()}})
    TORCH_CHECK(v > 0.0 && v <= 100000.0, "fbank: ", name, " must be in (0, 100000] ms, got ", v);
  TORCH_CHECK(std::isfinite(o.input_scale()) && o.input_scale() > 0.0,
              "fbank: input_scale must be a positive finite number, got ", o.input_scale());
  TORCH_CHECK(o.preemphasis() >= 0.0 && o.preemphasis() <= 1.0, "fbank: preemphasis must be in [0, 1], got ",
              o.preemphasis());
  TORCH_CHECK(o.sample_rate() >= 1 && o.sample_rate() <= kMaxSampleRate, "fbank: sample_rate must be in 1..",
              kMaxSampleRate, " Hz, got ", o.sample_rate());
  TORCH_CHECK(o.num_bins() >= 3, "fbank: num_bins must be at least 3, got ", o.num_bins());
  TORCH_CHECK(frame_length_samples(o) >= 2, "fbank: a frame of ", o.frame_length_ms(),
              " ms at ", o.sample_rate(), " Hz has fewer than 2 samples");
  TORCH_CHECK(frame_shift_samples(o) >= 1, "fbank: a frame shift of ", o.frame_shift_ms(),
              " ms at ", o.sample_rate(), " Hz is less than one sample");
  TORCH_CHECK(o.log_floor() > 0.0, "fbank: log_floor must be positive, got ", o.log_floor());
  const double nyquist = 0.5 * static_cast<double>(o.sample_rate());
  const double high = o.high_freq() <= 0.0 ? o.high_freq() + nyquist : o.high_freq();
  TORCH_CHECK(o.low_freq() >= 0.0 && o.low_freq() < nyquist, "fbank: low_freq ", o.low_freq(),
              " Hz must lie in [0, Nyquist = ", nyquist, " Hz)");
  TORCH_CHECK(high > 0.0 && high <= nyquist && o.low_freq() < high, "fbank: high_freq ",
              o.high_freq(), " Hz (-> ", high, " Hz) must lie in (low_freq, Nyquist = ", nyquist,
              " Hz]");
}

torch::Tensor window_function(WindowType type, int64_t n) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  switch (type) {
    case WindowType::Povey:
      return torch::hann_window(n, /*periodic=*/false, f32).pow(0.85);
    case WindowType::Hamming:
      return torch::hamming_window(n, /*periodic=*/false, 0.54, 0.46, f32);
    case WindowType::Hanning:
      return torch::hann_window(n, /*periodic=*/false, f32);
    case WindowType::Rectangular:
      return torch::ones({n}, f32);
    case WindowType::Blackman: {
      const double a = 2.0 * M_PI / static_cast<double>(n - 1);
      auto k = torch::arange(n, f32);
      return 0.42 - 0.5 * torch::cos(a * k) + 0.08 * torch::cos(2.0 * a * k);
    }
  }
  TORCH_CHECK(false, "fbank: unknown window type");
}

// Frame matrix (frames x frame_length). With snip_edges the frames are views
// of the waveform (as_strided, no copy); otherwise Kaldi centres frame i on
// sample i*shift + shift/2 and reflects indices that fall outside the signal
// (-1 -> 0, N -> N-1), which a single gather does for all frames at once.
torch::Tensor frame_matrix(const torch::Tensor& wave, const FbankOptions& o, int64_t frames) {
  const int64_t len = frame_length_samples(o);
  const int64_t shift = frame_shift_samples(o);
  if (o.snip_edges()) return wave.as_strided({frames, len}, {shift, 1});
  const int64_t n = wave.size(0);
  const auto i64 = torch::TensorOptions().dtype(torch::kLong);
  auto starts = torch::arange(frames, i64) * shift + (shift / 2 - len / 2);
  auto idx = starts.unsqueeze(1) + torch::arange(len, i64).unsqueeze(0);
  // Repeated reflection handles signals shorter than half a frame.
  while (true) {
    auto low = idx < 0;
    auto high = idx >= n;
    if (!low.any().item<bool>() && !high.any().item<bool>()) break;
    idx = torch::where(low, -idx - 1, idx);
    idx = torch::where(idx >= n, 2 * n - 1 - idx, idx);
  }
  return wave.index({idx});
}

}  // namespace

WindowType parse_window_type(const std::string& name) {
  if (name == "povey") return WindowType::Povey;
  if (name == "hamming") return WindowType::Hamming;
  if (name == "hanning") return WindowType::Hanning;
  if (name == "rectangular") return WindowType::Rectangular;
  if (name == "blackman") return WindowType::Blackman;
  TORCH_CHECK(false, "unknown window type '", name,
              "' (expected povey, hamming, hanning, rectangular or blackman)");
}

std::string to_string(WindowType window) {
  switch (window) {
    case WindowType::Povey: return "povey";
    case WindowType::Hamming: return "hamming";
    case WindowType::Hanning: return "hanning";
    case WindowType::Rectangular: return "rectangular";
    case WindowType::Blackman: return "blackman";
  }
  return "?";
}

std::string describe(const FbankOptions& o) {
  return fmt::format(
      "kaldi-fbank num_bins={} frame_length_ms={} frame_shift_ms={} window={} preemphasis={} "
      "remove_dc_offset={} snip_edges={} low_freq={} high_freq={} use_power={} log_floor={} "
      "round_to_power_of_two={} sample_rate={} input_scale={}",
      o.num_bins(), o.frame_length_ms(), o.frame_shift_ms(), to_string(o.window()),
      o.preemphasis(), o.remove_dc_offset(), o.snip_edges(), o.low_freq(), o.high_freq(),
      o.use_power(), o.log_floor(), o.round_to_power_of_two(), o.sample_rate(), o.input_scale());
}

FbankOptions parse_description(const std::string& description) {
  std::istringstream in(description);
  std::string word;
  if (!(in >> word) || word != "kaldi-fbank")
    throw std::invalid_argument("not a kaldi-fbank description: '" + description + "'");
  FbankOptions o;
  auto to_bool = [&](const std::string& k, const std::string& v) {
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    throw std::invalid_argument("fbank description: " + k + "=" + v + " is not a boolean");
  };
  // Whole numbers only: "26abc" is a damaged file, not 26.
  struct BadValue {};
  auto integer = [](const std::string& v) {
    if (auto x = crnn::parse_integer(v)) return *x;
    throw BadValue{};
  };
  auto number = [](const std::string& v) {
    if (auto x = crnn::parse_number(v)) return *x;
    throw BadValue{};
  };
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("fbank description: bad field '" + word + "'");
    const std::string k = word.substr(0, eq), v = word.substr(eq + 1);
    try {
      if (k == "num_bins") o.num_bins(integer(v));
      else if (k == "frame_length_ms") o.frame_length_ms(number(v));
      else if (k == "frame_shift_ms") o.frame_shift_ms(number(v));
      else if (k == "window") o.window(parse_window_type(v));
      else if (k == "preemphasis") o.preemphasis(number(v));
      else if (k == "remove_dc_offset") o.remove_dc_offset(to_bool(k, v));
      else if (k == "snip_edges") o.snip_edges(to_bool(k, v));
      else if (k == "low_freq") o.low_freq(number(v));
      else if (k == "high_freq") o.high_freq(number(v));
      else if (k == "use_power") o.use_power(to_bool(k, v));
      else if (k == "log_floor") o.log_floor(number(v));
      else if (k == "round_to_power_of_two") o.round_to_power_of_two(to_bool(k, v));
      else if (k == "sample_rate") o.sample_rate(integer(v));
      else if (k == "input_scale") o.input_scale(number(v));
      else if (k == "resampler") continue;
      else throw std::invalid_argument("fbank description: unknown field '" + k + "'");
    } catch (const std::invalid_argument&) {
      throw;
    } catch (...) {  // BadValue, or parse_window_type's c10::Error
      throw std::invalid_argument("fbank description: bad value in '" + word + "'");
    }
  }
  // The description comes from a file: options no extractor could have used are
  // a damaged file, reported here rather than at the first compute_fbank.
  try {
    check_options(o);
  } catch (const c10::Error& e) {
    throw std::invalid_argument("fbank description: " + std::string(e.what_without_backtrace()));
  }
  return o;
}

int64_t frame_length_samples(const FbankOptions& o) {
  // Kaldi and torchaudio truncate (int(sr * ms * 0.001)), they do not round.
  return static_cast<int64_t>(static_cast<double>(o.sample_rate()) * o.frame_length_ms() * 0.001);
}

int64_t frame_shift_samples(const FbankOptions& o) {
  return static_cast<int64_t>(static_cast<double>(o.sample_rate()) * o.frame_shift_ms() * 0.001);
}

int64_t num_frames(int64_t num_samples, const FbankOptions& o) {
  const int64_t len = frame_length_samples(o);
  const int64_t shift = frame_shift_samples(o);
  if (o.snip_edges()) return num_samples < len ? 0 : 1 + (num_samples - len) / shift;
  return (num_samples + shift / 2) / shift;
}

torch::Tensor mel_banks(const FbankOptions& o) {
  check_options(o);
  // Same arithmetic and precision as torchaudio's get_mel_banks: scalars in
  // double, the per-bin / per-FFT-bin grids in float32.
  const int64_t padded = fft_size(o);
  const int64_t num_fft_bins = padded / 2;
  const double sr = static_cast<double>(o.sample_rate());
  const double nyquist = 0.5 * sr;
  const double high = o.high_freq() <= 0.0 ? o.high_freq() + nyquist : o.high_freq();
  const double fft_bin_width = sr / static_cast<double>(padded);
  const double mel_low = mel_scale(o.low_freq());
  const double mel_high = mel_scale(high);
  const double mel_delta = (mel_high - mel_low) / static_cast<double>(o.num_bins() + 1);

  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  auto bin = torch::arange(o.num_bins(), f32).unsqueeze(1);
  auto left = mel_low + bin * mel_delta;
  auto center = mel_low + (bin + 1.0) * mel_delta;
  auto right = mel_low + (bin + 2.0) * mel_delta;
  auto mel = (1.0 + torch::arange(num_fft_bins, f32) * fft_bin_width / 700.0).log() * 1127.0;
  mel = mel.unsqueeze(0);
  auto up = (mel - left) / (center - left);
  auto down = (right - mel) / (right - center);
  auto banks = torch::clamp_min(torch::min(up, down), 0.0);
  // A triangle narrower than one FFT bin gets no weight at all: its column
  // would be the log floor in every frame. Kaldi refuses such settings too
  // ("You may have set --num-mel-bins too large").
  const auto empty = torch::nonzero(banks.sum(1) <= 0.0);
  TORCH_CHECK(empty.size(0) == 0, "num_bins = ", o.num_bins(), " is too many for a ", padded, "-point FFT at ",
              o.sample_rate(), " Hz: ", empty.size(0), " mel bin(s), the first bin ", empty[0][0].item<int64_t>(),
              ", cover no FFT bin and would be constant; use fewer bins (or a longer frame)");
  // The Nyquist bin of the rfft gets weight 0 (Kaldi's triangles cover
  // [0, padded/2) only).
  return torch::constant_pad_nd(banks, {0, 1}, 0.0).contiguous();
}

torch::Tensor compute_fbank(const torch::Tensor& waveform, const FbankOptions& o) {
  TORCH_CHECK(waveform.dim() == 1, "compute_fbank: expected a 1-D waveform, got shape ",
              waveform.sizes());
  TORCH_CHECK(waveform.is_floating_point(), "compute_fbank: expected a floating-point waveform");
  TORCH_CHECK(!waveform.is_meta(), "compute_fbank: a meta tensor holds no samples");
  check_options(o);
  const int64_t frames = num_frames(waveform.size(0), o);
  if (frames == 0) return torch::empty({0, o.num_bins()}, torch::kFloat);

  torch::NoGradGuard no_grad;
  // Kaldi analyses int16-scale samples; see FbankOptions::input_scale.
  auto wave = (waveform.to(torch::kCPU, torch::kFloat) * o.input_scale()).contiguous();
  const auto all = frame_matrix(wave, o, frames);  // frames x len (a strided view with snip_edges)
  const auto window = window_function(o.window(), all.size(1)).unsqueeze(0);
  const auto banks = mel_banks(o).t();
  // Every step is per frame, so blocks of frames give the same rows as one
  // pass, and a long recording's temporaries (the windowed frames, their
  // spectra: ~2.5 GB per hour of 16 kHz audio in one pass) stay a block's.
  auto block = [&](torch::Tensor x) {
    if (o.remove_dc_offset()) x = x - x.mean(1, /*keepdim=*/true);
    if (o.preemphasis() != 0.0) {
      // Kaldi replicates the first sample: y[0] = x[0] - c x[0].
      namespace I = torch::indexing;
      auto prev = torch::cat({x.index({I::Slice(), I::Slice(0, 1)}), x.index({I::Slice(), I::Slice(0, -1)})}, 1);
      x = x - o.preemphasis() * prev;
    }
    x = x * window;
    // One batched real FFT over the block's frames; n= zero-pads each row to fft_size.
    auto spectrum = torch::fft::rfft(x, fft_size(o), /*dim=*/1).abs();
    if (o.use_power()) spectrum = spectrum.pow(2.0);
    return torch::clamp_min(torch::mm(spectrum, banks), o.log_floor()).log();
  };
  if (frames <= kFbankBlockFrames) return block(all);
  auto out = torch::empty({frames, o.num_bins()}, torch::kFloat);
  for (int64_t begin = 0; begin < frames; begin += kFbankBlockFrames) {
    const int64_t end = std::min(frames, begin + kFbankBlockFrames);
    out.slice(0, begin, end).copy_(block(all.slice(0, begin, end)));
  }
  return out;
}

torch::Tensor fbank_of_file(const std::string& path, const FbankOptions& options, double* audio_seconds) {
  check_options(options);  // before decoding a whole file with options that cannot be used
  const torch::Tensor wave = read_audio(path, static_cast<int>(options.sample_rate()));
  if (audio_seconds) *audio_seconds = static_cast<double>(wave.size(0)) / static_cast<double>(options.sample_rate());
  return compute_fbank(wave, options);
}

std::vector<std::string> fbank_feature_names(int64_t num_bins) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(num_bins));
  for (int64_t i = 0; i < num_bins; ++i) names.push_back(fmt::format("fbank_{:02d}", i));
  return names;
}

}  // namespace crnn::audio

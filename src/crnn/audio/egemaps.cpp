#include "crnn/audio/egemaps.h"

#include <fmt/core.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "crnn/audio/egemaps_loudness.h"
#include "crnn/audio/egemaps_smoothing.h"
#include "crnn/audio/egemaps_spectral.h"
#include "crnn/audio/egemaps_voice.h"
#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/util/text.h"

namespace crnn::audio {
namespace {

// Columns 0..9 come from the 25 ms frames and are smoothed with sma3; columns
// 10..24 from the 60 ms frames (or need F0) and are smoothed with sma3nz.
constexpr int64_t kShortColumns = 10;

const char* const kNames[kEgemapsLlds] = {
    "Loudness",         "alphaRatio",          "hammarbergIndex",      "slope0-500",      "slope500-1500",
    "spectralFlux",     "mfcc1",               "mfcc2",                "mfcc3",           "mfcc4",
    "F0semitoneFrom27.5Hz", "jitterLocal",     "shimmerLocaldB",       "HNRdBACF",        "logRelF0-H1-H2",
    "logRelF0-H1-A3",   "F1frequency",         "F1bandwidth",          "F1amplitudeLogRelF0",
    "F2frequency",      "F2bandwidth",         "F2amplitudeLogRelF0",  "F3frequency",     "F3bandwidth",
    "F3amplitudeLogRelF0"};

}  // namespace

void check_egemaps_options(const EgemapsOptions& o) {
  TORCH_CHECK(o.sample_rate() >= 8000 && o.sample_rate() <= kMaxSampleRate, "egemaps: sample_rate must be in 8000..",
              kMaxSampleRate, " Hz, got ", o.sample_rate());
  TORCH_CHECK(o.block_frames() >= 1, "egemaps: block_frames must be at least 1, got ", o.block_frames());
}

std::vector<std::string> egemaps_feature_names(bool smoothed) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < kEgemapsLlds; ++i) {
    std::string n = kNames[i];
    if (smoothed) n += i < kShortColumns ? "_sma3" : "_sma3nz";
    names.push_back(n);
  }
  return names;
}

int64_t egemaps_num_frames(int64_t num_samples, const EgemapsOptions& o) {
  const int64_t len = egemaps::samples_of_ms(60.0, o.sample_rate());
  const int64_t shift = egemaps::samples_of_ms(10.0, o.sample_rate());
  return num_samples < len ? 0 : 1 + (num_samples - len) / shift;
}

torch::Tensor compute_egemaps(const torch::Tensor& waveform, const EgemapsOptions& o) {
  TORCH_CHECK(waveform.dim() == 1, "compute_egemaps: expected a 1-D waveform, got shape ", waveform.sizes());
  TORCH_CHECK(waveform.is_floating_point(), "compute_egemaps: expected a floating-point waveform");
  TORCH_CHECK(!waveform.is_meta(), "compute_egemaps: a meta tensor holds no samples");
  check_egemaps_options(o);
  const int64_t frames = egemaps_num_frames(waveform.size(0), o);
  if (frames == 0) return torch::empty({0, kEgemapsLlds}, torch::kFloat);
  torch::NoGradGuard no_grad;
  const int64_t rate = o.sample_rate();
  const auto wave = waveform.to(torch::kCPU, torch::kFloat).contiguous();

  // 25 ms group: two frames beyond the last 60 ms window feed the smoother's
  // last output frame.
  const int64_t short_frames = o.smooth() ? frames + 2 : frames;
  // Block by block, each block with the frame before it for the spectral flux.
  const int64_t shift = egemaps::samples_of_ms(10.0, rate);
  auto short_raw = egemaps::by_frame_blocks(short_frames, o.block_frames(), [&](int64_t first, int64_t count) {
    const int64_t lead = first > 0 ? 1 : 0;
    const int64_t start = std::min((first - lead) * shift, wave.size(0));
    const auto spec = egemaps::short_frame_spectrum(wave.narrow(0, start, wave.size(0) - start), rate, count + lead);
    auto mf = egemaps::mfcc(spec, 4);
    auto raw = torch::stack({egemaps::loudness(spec), egemaps::alpha_ratio(spec), egemaps::hammarberg_index(spec),
                             egemaps::spectral_slope(spec, 0.0, 500.0), egemaps::spectral_slope(spec, 500.0, 1500.0),
                             egemaps::spectral_flux(spec), mf.select(1, 0), mf.select(1, 1), mf.select(1, 2),
                             mf.select(1, 3)},
                            1);
    return std::vector<torch::Tensor>{raw.narrow(0, lead, count)};
  })[0];

  // 60 ms group.
  const auto pitch = egemaps::track_pitch(wave, rate, frames, o.pitch(), o.block_frames());
  const auto periods = egemaps::mark_periods(wave, rate, pitch.f0_hz);
  const auto formants = egemaps::lpc_formants(wave, rate, frames, o.formants(), o.block_frames());
  const auto levels = egemaps::formant_levels_rel_f0(pitch, formants.frequency);
  auto f3 = formants.frequency.size(1) >= 3 ? formants.frequency.select(1, 2) : torch::zeros({frames});
  std::vector<torch::Tensor> cols = {egemaps::semitones_from_27_5(pitch.f0_hz),
                                     egemaps::jitter_local(periods, rate, pitch.f0_hz),
                                     egemaps::shimmer_local_db(periods, rate, pitch.f0_hz),
                                     egemaps::hnr_db(pitch),
                                     egemaps::h1_h2_db(pitch),
                                     egemaps::h1_a3_db(pitch, f3)};
  for (int64_t c = 0; c < 3; ++c) {
    const bool have = c < formants.frequency.size(1);
    cols.push_back(have ? formants.frequency.select(1, c) : torch::zeros({frames}));
    cols.push_back(have ? formants.bandwidth.select(1, c) : torch::zeros({frames}));
    cols.push_back(have ? levels.select(1, c) : torch::full({frames}, egemaps::kUnvoicedLevel));
  }
  auto long_raw = torch::stack(cols, 1);

  torch::Tensor out;
  if (!o.smooth()) {
    out = torch::cat({short_raw.narrow(0, 0, frames), long_raw}, 1);
  } else {
    out = torch::cat({egemaps::sma3(short_raw, frames + 1, false), egemaps::sma3(long_raw, frames + 1, true)}, 1);
  }
  return out.to(torch::kFloat).contiguous();
}

std::string describe(const EgemapsOptions& o) {
  return fmt::format("egemaps-v02 smooth={} sample_rate={}", o.smooth(), o.sample_rate());
}

EgemapsOptions parse_egemaps_description(const std::string& description) {
  std::istringstream in(description);
  std::string word;
  if (!(in >> word) || word != "egemaps-v02")
    throw std::invalid_argument("not an egemaps-v02 description: '" + description + "'");
  EgemapsOptions o;
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("egemaps description: bad field '" + word + "'");
    const std::string k = word.substr(0, eq), v = word.substr(eq + 1);
    if (k == "smooth") {
      if (v != "true" && v != "false") throw std::invalid_argument("egemaps description: smooth=" + v + " is not a boolean");
      o.smooth(v == "true");
    } else if (k == "sample_rate") {
      const auto rate = crnn::parse_integer(v);
      if (!rate) throw std::invalid_argument("egemaps description: bad value in '" + word + "'");
      o.sample_rate(*rate);
    } else if (k == "resampler") {
      continue;
    } else {
      throw std::invalid_argument("egemaps description: unknown field '" + k + "'");
    }
  }
  try {
    check_egemaps_options(o);
  } catch (const c10::Error& e) {
    throw std::invalid_argument("egemaps description: " + std::string(e.what_without_backtrace()));
  }
  return o;
}

torch::Tensor egemaps_of_file(const std::string& path, const EgemapsOptions& options, double* audio_seconds) {
  check_egemaps_options(options);
  const torch::Tensor wave = read_audio(path, static_cast<int>(options.sample_rate()));
  if (audio_seconds) *audio_seconds = static_cast<double>(wave.size(0)) / static_cast<double>(options.sample_rate());
  // read_audio's samples are finite and within ±kMaxWaveformPeak: no overflow below.
  torch::Tensor features = compute_egemaps(wave, options);
  if (!torch::isfinite(features).all().item<bool>())
    throw AudioError(path, "eGeMAPS features are not finite");
  return features;
}

}  // namespace crnn::audio

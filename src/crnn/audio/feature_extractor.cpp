#include "crnn/audio/feature_extractor.h"

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

namespace crnn::audio {

FeatureExtractor FeatureExtractor::fbank(const FbankOptions& options) {
  FeatureExtractor f;
  f.kind_ = Kind::Fbank;
  f.fbank_ = options;
  (void)mel_banks(options);  // settings whose filterbank is unusable fail here, before any file
  return f;
}

FeatureExtractor FeatureExtractor::egemaps(const EgemapsOptions& options) {
  FeatureExtractor f;
  f.kind_ = Kind::Egemaps;
  f.egemaps_ = options;
  check_egemaps_options(options);  // before any file, as for fbank
  return f;
}

FeatureExtractor FeatureExtractor::parse(const std::string& description) {
  if (description.rfind("egemaps-v02", 0) == 0) return egemaps(parse_egemaps_description(description));
  if (description.rfind("kaldi-fbank", 0) == 0) return fbank(parse_description(description));
  throw std::invalid_argument("unknown feature extractor '" + description +
                              "' (expected 'kaldi-fbank ...' or 'egemaps-v02 ...')");
}

std::string FeatureExtractor::kind_name() const { return kind_ == Kind::Egemaps ? "egemaps" : "fbank"; }

std::string FeatureExtractor::describe() const {
  return kind_ == Kind::Egemaps ? audio::describe(egemaps_) : audio::describe(fbank_);
}

std::vector<std::string> FeatureExtractor::feature_names() const {
  return kind_ == Kind::Egemaps ? egemaps_feature_names(egemaps_.smooth()) : fbank_feature_names(fbank_.num_bins());
}

int64_t FeatureExtractor::num_features() const { return kind_ == Kind::Egemaps ? kEgemapsLlds : fbank_.num_bins(); }

int64_t FeatureExtractor::sample_rate() const {
  return kind_ == Kind::Egemaps ? egemaps_.sample_rate() : fbank_.sample_rate();
}

double FeatureExtractor::frame_shift_ms() const { return kind_ == Kind::Egemaps ? 10.0 : fbank_.frame_shift_ms(); }

double FeatureExtractor::min_input_ms() const { return kind_ == Kind::Egemaps ? 60.0 : fbank_.frame_length_ms(); }

std::string FeatureExtractor::too_short_reason(double audio_seconds) const {
  return fmt::format("shorter than one {:g} ms frame ({} samples at {} Hz)", min_input_ms(),
                     std::llround(audio_seconds * static_cast<double>(sample_rate())), sample_rate());
}

torch::Tensor FeatureExtractor::of_file(const std::string& path, double* audio_seconds) const {
  return kind_ == Kind::Egemaps ? egemaps_of_file(path, egemaps_, audio_seconds)
                                : fbank_of_file(path, fbank_, audio_seconds);
}

}  // namespace crnn::audio

#pragma once
/// \file feature_extractor.h
/// One front end chosen by name: the Kaldi log mel filterbank (fbank.h) or the
/// eGeMAPS v02 LLDs (egemaps.h). The extractor's describe() line is what a
/// feature store and a model file record; parse() turns such a line back into
/// the extractor, so that `crnn predict` computes from raw audio exactly the
/// features a model was trained on.
///
/// \code
///   auto fx = crnn::audio::FeatureExtractor::egemaps(crnn::audio::EgemapsOptions());
///   auto feats = fx.of_file("utt.flac");                       // (T+1) x 25
///   auto same = crnn::audio::FeatureExtractor::parse(fx.describe());
/// \endcode

#include <torch/torch.h>

#include <string>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/fbank.h"

namespace crnn::audio {

class FeatureExtractor {
 public:
  enum class Kind { Fbank, Egemaps };

  static FeatureExtractor fbank(const FbankOptions& options);
  static FeatureExtractor egemaps(const EgemapsOptions& options);
  /// From a describe() line ("kaldi-fbank ..." or "egemaps-v02 ..."), with or
  /// without the " resampler=…" that `crnn features` appends. Throws
  /// std::invalid_argument naming the unreadable part.
  static FeatureExtractor parse(const std::string& description);

  Kind kind() const { return kind_; }
  /// "fbank" or "egemaps" (the `crnn features --kind` value).
  std::string kind_name() const;
  const FbankOptions& fbank_options() const { return fbank_; }
  const EgemapsOptions& egemaps_options() const { return egemaps_; }

  std::string describe() const;
  std::vector<std::string> feature_names() const;
  int64_t num_features() const;
  int64_t sample_rate() const;
  double frame_shift_ms() const;
  /// Length of the shortest input that gives a frame (25 ms fbank frame,
  /// 60 ms eGeMAPS window), for messages about files that are too short.
  double min_input_ms() const;
  /// Why a file of `audio_seconds` gave no frames, as `crnn features` and
  /// `crnn predict` report it: "shorter than one 60 ms frame (800 samples at
  /// 16000 Hz)".
  std::string too_short_reason(double audio_seconds) const;

  /// Features of an audio file (fbank_of_file / egemaps_of_file): frames x
  /// num_features(); 0 frames for a file shorter than min_input_ms(). Throws
  /// AudioError naming the file.
  torch::Tensor of_file(const std::string& path, double* audio_seconds = nullptr) const;

 private:
  Kind kind_ = Kind::Fbank;
  FbankOptions fbank_;
  EgemapsOptions egemaps_;
};

}  // namespace crnn::audio

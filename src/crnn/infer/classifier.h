#pragma once
/// \file classifier.h
/// The one inference path: a trained model file, its feature extractor and
/// its normalization, applied to audio files, waveforms or feature matrices.
/// `crnn predict` and `crnn eval --predictions` (and the Python module) go
/// through it, so a file gets the same probabilities whichever asks.
///
/// Normalization (docs/training.md, "Model files and prediction"):
///   - speaker:   every speaker standardized with the statistics of all its
///                utterances in the batch (what training and `crnn eval` do);
///                an utterance without a speaker is its own speaker;
///   - utterance: every utterance with its own statistics;
///   - global:    the training set's statistics (stored in the model file);
///   - automatic: `speaker` for a model trained with per-speaker statistics,
///                `global` for one trained with global statistics.
///
/// \code
///   crnn::infer::Classifier c("runs/clstm/best.pt");
///   auto preds = c.predict({{"a", "a.wav"}, {"b", "b.flac"}});   // each file its own speaker
///   crnn::infer::Input buffer;                                    // audio already in memory:
///   buffer.id = "mic", buffer.waveform = samples, buffer.sample_rate = 16000;
///   auto live = c.predict({buffer});
///   std::cout << preds[0].label << " " << preds[0].probabilities[0] << "\n";
///
///   crnn::infer::PredictOptions o;                                // a long recording, 3 s at a time:
///   o.segment_seconds = 3, o.hop_seconds = 1;
///   for (auto& p : c.predict({{"talk", "talk.wav"}}, o))
///     std::cout << p.start_seconds << "-" << p.end_seconds << " " << p.label << "\n";
/// \endcode

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "crnn/audio/feature_extractor.h"
#include "crnn/data/manifest.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/trainer.h"

namespace crnn::infer {

enum class Normalization { automatic, speaker, utterance, global };

/// "auto" | "speaker" | "utterance" | "global"; throws std::invalid_argument.
Normalization parse_normalization(const std::string& name);

/// One utterance to classify.
struct Input {
  std::string id;
  std::string path;     ///< audio file (unless `features` or `waveform` is given)
  std::string speaker;  ///< "" = unknown: its own speaker
  std::string truth;    ///< the reference label, if known (copied to the prediction)
  torch::Tensor features;  ///< raw (unnormalized) frames × k; computed from `waveform` or `path` when undefined
  /// Audio already in memory instead of a file: mono float samples in [-1, 1)
  /// at `sample_rate` Hz (features_of_waveform's checks apply).
  torch::Tensor waveform;
  int64_t sample_rate = 0;
};

struct Prediction {
  std::string id, path, speaker, truth;
  std::string label;                 ///< the most probable class ("" on error)
  std::vector<float> probabilities;  ///< per class, in labels() order
  int64_t frames = 0;                ///< classified (of the segment, with segments)
  double audio_seconds = 0;          ///< the input's audio (0 when given as features); each segment has its input's
  std::string error;                 ///< non-empty: this input failed (unreadable, too short, ...)
  /// Every frame the same (data::holds_no_signal: digital silence, DC, a steady tone,
  /// channels that cancel): the label is given but carries no information.
  bool no_signal = false;
  /// With PredictOptions::segment_seconds: the window's number in its input
  /// (0, 1, ...) and its span in seconds from the input's start, in feature
  /// frames (frame f starts at f × the frame shift); -1 and 0, 0 for a whole input.
  int64_t segment = -1;
  double start_seconds = 0, end_seconds = 0;
};

struct PredictOptions {
  Normalization normalization = Normalization::automatic;
  int64_t batch_size = 32;
  /// Workers decoding and computing features in parallel (each single-threaded); 0 = intra-op threads.
  int threads = 0;
  /// Called after each input's features are computed (done, total), e.g. for a progress bar.
  std::function<void(size_t, size_t)> on_features;
  /// > 0: classify windows of this many seconds of each input instead of the
  /// whole input (a long recording; segment_frames says where they lie),
  /// rounded to whole feature frames. The input is normalized as a whole
  /// first (whatever `normalization` says, its statistics are the input's or
  /// its speaker's, never one window's). 0 = whole inputs.
  double segment_seconds = 0;
  /// Seconds from one window's start to the next, rounded to whole frames:
  /// 0 = segment_seconds (back to back); at most segment_seconds (no audio
  /// left unclassified).
  double hop_seconds = 0;
};

/// Longest segment or hop PredictOptions takes, in seconds (115 days).
inline constexpr double kMaxSegmentSeconds = 1e7;

/// Seconds from one feature frame to the next, exactly (a whole number of samples for fbank).
double frame_shift_seconds(const audio::FeatureExtractor& extractor);

/// The windows [begin, end) of `window` frames, `hop` frames apart, over an
/// input of `frames` frames: starts 0, hop, 2·hop, ... while a window still
/// ends before the input does, then one window ending at the last frame, so
/// that every window has `window` frames and every frame is in one. An input
/// of at most `window` frames is one window. Needs 1 <= hop <= window.
/// segment_frames(10, 4, 4) = {[0,4), [4,8), [6,10)}.
std::vector<std::pair<int64_t, int64_t>> segment_frames(int64_t frames, int64_t window, int64_t hop);

/// The index of the most probable class (the first of equal ones, as argmax).
size_t most_probable(const std::vector<float>& probabilities);

/// The per-utterance predictions of an evaluation made with
/// keep_probabilities (`crnn eval --predictions`), in the order of `examples`
/// (the manifest's order), with path, speaker and truth from `rows`.
std::vector<Prediction> predictions_of(const train::Evaluation& e, const std::vector<data::Example>& examples,
                                       const data::Manifest& rows, const std::string& task,
                                       const std::vector<std::string>& labels);

class Classifier {
 public:
  /// A model file (best.pt) or a run directory (its best.pt). Throws
  /// DataError naming the file when it is missing or not a crnn model.
  explicit Classifier(const std::string& model_or_run_dir);

  const std::string& model_path() const { return path_; }
  const std::vector<std::string>& labels() const { return model_.bundle.labels; }
  const std::string& task() const { return model_.bundle.task; }
  const std::string& feature_extractor() const { return model_.bundle.feature_extractor; }
  /// The normalization `automatic` means for this model (speaker or global).
  Normalization trained_normalization() const { return trained_; }
  const train::LoadedModel& model() const { return model_; }
  /// The recorded front end (fbank or eGeMAPS) that makes features from audio.
  const audio::FeatureExtractor& extractor() const { return extractor_; }

  /// Raw features of an audio file / of a mono waveform, as the model's training features were made.
  torch::Tensor features_of_file(const std::string& path) const;
  torch::Tensor features_of_waveform(const torch::Tensor& samples, int64_t sample_rate) const;

  /// Classifies `inputs` (features computed in parallel where not given),
  /// normalized as `o.normalization` says, in batches of neighbouring lengths
  /// exactly as `crnn eval` batches. A failed input gets `error` and does not
  /// stop the others.
  std::vector<Prediction> predict(std::vector<Input> inputs, const PredictOptions& o = {});

 private:
  std::string path_;
  train::LoadedModel model_;
  Normalization trained_ = Normalization::speaker;
  audio::FeatureExtractor extractor_;
};

}  // namespace crnn::infer

#pragma once
/// \file normalization.h
/// Per-(speaker, feature) standardisation (SPEC §3).
///
/// Every speaker's features are standardised with the mean and standard
/// deviation of that speaker's own frames — all of them, over all its
/// utterances — in every split (test speakers use their own statistics; this
/// needs no labels). Global statistics over the training frames are the
/// fallback for a speaker with no statistics (an unseen speaker at inference).
///
/// Conventions (docs/normalization.md):
///  * std is the population std (divide by N), accumulated in float64;
///  * a feature whose std <= `min_std` (constant for this speaker, or a
///    speaker with one frame) has no scale: its output is exactly 0;
///  * features are float32 tensors of shape frames × features.
///
/// \code
///   std::map<std::string, std::vector<torch::Tensor>> by_speaker = ...;
///   NormalizationOptions no;
///   no.global_speakers = training_speakers;        // fallback from training only
///   SpeakerStats stats = compute_speaker_stats(by_speaker, no);
///   torch::Tensor z = stats.apply(x, "spk7");     // unknown speaker → global
/// \endcode

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace crnn::data {

/// Mean and scale of each feature (both float32, shape [features]).
struct FeatureStats {
  torch::Tensor mean;
  torch::Tensor std;    ///< population std, before any clamping
  torch::Tensor scale;  ///< 1/std, or 0 where std <= min_std
  int64_t frames = 0;   ///< frames the statistics were computed from
};

struct NormalizationOptions {
  /// A std at or below this counts as zero (feature output 0, not ±inf).
  double min_std = 1e-5;
  /// Speakers pooled into the global statistics; empty = all speakers given.
  std::vector<std::string> global_speakers;
};

/// True when `features` (frames × features) has at least 2 frames and every
/// frame is the same (each feature's range within 1e-5 of its magnitude, at
/// least 1e-5): the features of digital silence, DC, a steady tone whose period
/// divides the frame shift (or hum), or stereo
/// channels that cancel. Such an utterance has nothing to classify, yet it
/// gets a label and weighs in its speaker's statistics; `crnn features` and
/// `crnn train` point it out. Affine per-feature normalization keeps it so.
bool holds_no_signal(const torch::Tensor& features);

/// What holds_no_signal finds, in words, for the messages that report it.
inline constexpr const char* kNoSignal =
    "hold no signal: every frame identical (e.g. digital silence, DC, a steady tone or hum, or channels that cancel)";

/// Statistics over a set of frame matrices (each frames × features).
FeatureStats compute_stats(const std::vector<torch::Tensor>& utterances, double min_std = 1e-5);

/// (x − mean) · scale, x frames × features (or B × T × features); float32 out.
torch::Tensor apply(const torch::Tensor& x, const FeatureStats& stats);

class SpeakerStats {
 public:
  std::map<std::string, FeatureStats> speakers;
  FeatureStats global;

  bool has_speaker(const std::string& speaker) const { return speakers.count(speaker) > 0; }
  /// The speaker's statistics, or the global ones for an unknown speaker.
  const FeatureStats& for_speaker(const std::string& speaker) const;
  /// Standardises `x` with the speaker's (or the global) statistics.
  torch::Tensor apply(const torch::Tensor& x, const std::string& speaker) const;
};

/// Per-speaker statistics over all frames of each speaker, and global
/// statistics over the frames of `options.global_speakers` (or all).
/// Throws DataError on an empty speaker, a non-2-D tensor or mismatched
/// feature counts.
SpeakerStats compute_speaker_stats(const std::map<std::string, std::vector<torch::Tensor>>& by_speaker,
                                   const NormalizationOptions& options = {});

}  // namespace crnn::data

#pragma once
/// \file synthetic_corpus.h
/// A small labelled speech corpus generated on the fly with espeak-ng, for
/// the embedded demo (`crnn demo`): no download, no licence, a few seconds.
///
/// Task design (docs/demo.md): synthetic speakers (espeak-ng voice variant,
/// base pitch, speed, loudness drawn from the seed) read short neutral
/// sentences in two styles, task `arousal` = `calm` / `excited`. "Excited"
/// is higher in pitch, wider in pitch range, faster and louder than "calm"
/// *for the same speaker*, with random per-utterance jitter so that the
/// classes overlap (learnable well above chance, not trivially). A second,
/// speaker-level task `speaker_sex` (`female` / `male`) comes from the voice
/// variant. Whole speakers are assigned to train / valid / test.
///
/// \code
///   crnn::data::SyntheticCorpusOptions o;
///   o.out_dir = "/tmp/crnn-demo/corpus";
///   auto m = crnn::data::make_synthetic_corpus(o, [](int64_t done, int64_t total) {
///     fmt::print("\r{}/{}", done, total);
///   });
///   // m == Manifest::read("/tmp/crnn-demo/corpus/manifest.csv"); tasks: arousal, speaker_sex
///   auto train = m.subset("train");
/// \endcode

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "crnn/data/manifest.h"

namespace crnn::data {

/// Task names and labels of the synthetic corpus (also the manifest columns).
inline const std::string kArousalTask = "arousal";
inline const std::string kSpeakerSexTask = "speaker_sex";
/// The labels of `arousal`, in their natural order (calm = class 0).
inline const std::vector<std::string>& arousal_labels() {
  static const std::vector<std::string> labels{"calm", "excited"};
  return labels;
}
/// The labels of `speaker_sex`.
inline const std::vector<std::string>& speaker_sex_labels() {
  static const std::vector<std::string> labels{"female", "male"};
  return labels;
}

struct SyntheticCorpusOptions {
  /// WAVs (out_dir/wav/*.wav), manifest.csv and the stamp corpus.json go
  /// here; created if missing.
  std::string out_dir;
  /// Synthetic speakers, >= 3 (train, valid and test each need one). Half are
  /// female (rounded down), each a fixed espeak-ng voice variant (en+m1..m7,
  /// en+f1..f5) with its own base pitch, speed and loudness, drawn from `seed`.
  int64_t speakers = 8;
  /// Utterances per speaker and arousal class (the k-th calm and the k-th
  /// excited utterance of a speaker read the same sentence).
  int64_t utterances_per_class = 12;
  uint64_t seed = 0;
  /// Scales the calm / excited differences (pitch, range, speed, loudness);
  /// the per-utterance jitter stays. 1 is the tuned default (see
  /// docs/demo.md); larger is easier, 0 makes the classes indistinguishable.
  double separation = 1.0;
  /// espeak-ng processes run at a time. Does not change the output.
  int64_t jobs = 2;
  /// The espeak-ng executable: a name looked up in PATH, or a path.
  std::string espeak = "espeak-ng";
};

/// Generates the corpus with espeak-ng (one subprocess per utterance, writing
/// 22050 Hz 16-bit mono WAV with -w; read_audio resamples) and writes
/// out_dir/manifest.csv (relative paths; columns id, path, speaker, split,
/// arousal, speaker_sex), then the stamp out_dir/corpus.json. Returns the
/// manifest as Manifest::read returns it (absolute paths).
///
/// If the stamp already records the same options (and espeak-ng version) and
/// the manifest exists, nothing is generated: a re-run is instant. A stamp
/// with other options makes it regenerate (out_dir/wav is cleared first).
///
/// Deterministic: the same options give the same manifest, and with the same
/// espeak-ng version the same audio bytes (`jobs` does not matter).
///
/// `progress(done, total)` is called after each file, from worker threads but
/// never concurrently, with `done` increasing; a skipped run calls it once
/// with done == total.
///
/// Throws DataError for: espeak-ng not found ("espeak-ng not found: install it
/// (scripts/setup installs it)"), an out_dir that cannot be created or written,
/// an espeak-ng run that fails (its exit status and stderr), bad options.
Manifest make_synthetic_corpus(const SyntheticCorpusOptions& options,
                               std::function<void(int64_t done, int64_t total)> progress = {});

/// The sentences the speakers read (10 short, neutral English sentences).
const std::vector<std::string>& synthetic_corpus_sentences();

}  // namespace crnn::data

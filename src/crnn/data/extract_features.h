#pragma once
/// \file extract_features.h
/// Feature extraction for every row of a manifest into an HDF5 FeatureStore,
/// parallel over files, resumable (ids already in the store are skipped,
/// unless their audio file changed since: data::changed_sources).
///
/// N worker threads (N = `threads`) each decode, resample and compute the
/// fbank of the next row with LibTorch restricted to one intra-op thread (the
/// parallelism is over files; nested intra-op threads would oversubscribe the
/// cores). Only the calling thread touches HDF5: results arrive through a
/// bounded queue and are written and flushed in completion order, so an
/// interrupted run keeps everything written so far.
///
/// \code
///   crnn::data::ExtractOptions o;             // default: 26-bin Kaldi fbank at 16 kHz
///   o.kind = "egemaps";                       // or: the 25 eGeMAPS v02 LLDs
///   auto r = crnn::data::extract_features("manifest.csv", "feats.h5", o);
///   for (auto& f : r.failed) std::cerr << f << "\n";
/// \endcode

#include <map>
#include <string>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/fbank.h"
#include "crnn/audio/feature_extractor.h"

namespace crnn::data {

struct ExtractOptions {
  audio::FbankOptions fbank;    ///< used with kind "fbank"
  audio::EgemapsOptions egemaps;  ///< used with kind "egemaps"
  std::string kind = "fbank";   ///< "fbank" (log mel filterbank) or "egemaps" (eGeMAPS v02 LLDs)
  int threads = 0;  ///< worker threads; 0 = LibTorch's current thread count
  /// Non-empty: afterwards, the manifest's rows that have features in the
  /// store (not the failed or too-short files) are written to this CSV (with
  /// absolute paths), a manifest training accepts with this store. Not the
  /// input manifest itself.
  std::string covered_manifest;
};

struct ExtractReport {
  size_t total = 0;      ///< manifest rows
  size_t extracted = 0;  ///< written by this call
  size_t present = 0;    ///< already in the store (resumed)
  size_t changed = 0;    ///< of `extracted`: stored before, but their audio file changed since (data::changed_sources)
  std::vector<std::string> skipped;  ///< "id (path): reason" — shorter than one frame
  std::vector<std::string> failed;   ///< "id (path): reason" — unreadable audio etc.
  /// When failed files do not exist: how many, where relative paths are taken
  /// from, and whether they exist from the working directory instead (the
  /// usual mistake); "" otherwise.
  std::string missing_note;
  /// Files written by this call whose own rate was below the extractor's:
  /// their rate → how many. Upsampled audio has no content above half its
  /// rate, so in a corpus of mixed rates the rate can stand in for the class.
  std::map<int, size_t> upsampled;
  /// "id (path)" of files written by this call whose every frame is the same
  /// (data::holds_no_signal): digital silence, DC, a steady tone, cancelling channels.
  std::vector<std::string> no_signal;
  double audio_seconds = 0, wall_seconds = 0;
  int workers = 0;
  size_t covered = 0;  ///< rows written to ExtractOptions::covered_manifest
};

/// The `crnn features` options that make features with `extractor_line` (a
/// store's or model's extractor, audio::FeatureExtractor::describe()): the
/// non-default ones, each with a leading space (" --kind egemaps", "
/// --num-bins 40 --window hamming"); "" for the defaults or a line that does
/// not parse. For messages that tell the user which command to run.
std::string command_options(const std::string& extractor_line);

/// Throws DataError for a bad manifest, an unknown kind or a store made with other options,
/// FeatureStoreError for an unusable output file. Per-file failures do not
/// throw: they are reported in the result.
ExtractReport extract_features(const std::string& manifest, const std::string& output,
                               const ExtractOptions& options = {});

}  // namespace crnn::data

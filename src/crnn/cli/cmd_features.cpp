// `crnn features`: manifest -> HDF5 feature store (fbank or eGeMAPS), parallel over files.
//
//   crnn --threads 2 features manifest.csv -o feats.h5 [--keep-going]
//   crnn features manifest.csv -o egemaps.h5 --kind egemaps   # the 25 eGeMAPS v02 LLDs
//   crnn features manifest.csv -o feats.h5 --keep-going --covered-manifest ok.csv  # the rows with features
//   crnn features --dump 03-01-01-01-01-01-01 feats.h5      # one matrix as CSV
//
// The extraction itself is crnn::data::extract_features (parallel, resumable).
// Exit status: 0 if every row has features or was skipped as too short (< one
// 25 ms frame; 60 ms for eGeMAPS), kExitPartial (3) if any file failed (0 with --keep-going),
// kExitUsage (2) for a bad manifest / incompatible store.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/cli/command.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/error.h"
#include "crnn/data/extract_features.h"
#include "crnn/data/normalization.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

namespace crnn::cli {
namespace {
namespace fs = std::filesystem;

struct FeaturesOptions {
  std::string input;  // manifest, or the feature file with --dump
  std::string output;
  std::string kind = "fbank";
  bool keep_going = false;
  int sample_rate = 16000;
  int num_bins = 26;
  std::string window = "povey";
  std::string dump_id;
  std::string covered_manifest;
  bool fbank_options_given = false;  // --num-bins or --window on the command line
};

int dump(const FeaturesOptions& o) {
  auto store = data::FeatureStore::open(o.input, data::FeatureStore::Mode::Read);
  if (!store.contains(o.dump_id)) {
    fmt::print(stderr, "crnn features: {}: no features for id '{}'\n", o.input, o.dump_id);
    return kExitUsage;
  }
  const torch::Tensor m = store.read(o.dump_id);
  std::string out;
  if (store.has_attributes()) {
    const auto names = store.feature_names();
    for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
    out += '\n';
  }
  const auto a = m.accessor<float, 2>();
  for (int64_t i = 0; i < m.size(0); ++i) {
    for (int64_t j = 0; j < m.size(1); ++j) {
      if (j) out += ',';
      out += fmt::format("{}", a[i][j]);  // shortest round-trip form
    }
    out += '\n';
  }
  fmt::print("{}", out);
  return 0;
}

int run_features(const FeaturesOptions& o) {
  if (!o.dump_id.empty()) return dump(o);
  if (o.output.empty()) {
    fmt::print(stderr, "crnn features: -o FEATURES.h5 is required (unless --dump)\n");
    return kExitUsage;
  }
  if (o.kind != "fbank" && o.fbank_options_given) {
    fmt::print(stderr, "crnn features: --num-bins and --window apply to --kind fbank only (not {})\n", o.kind);
    return kExitUsage;
  }
  data::ExtractOptions eo;
  eo.kind = o.kind;
  eo.covered_manifest = o.covered_manifest;
  eo.egemaps.sample_rate(o.sample_rate);
  eo.fbank.num_bins(o.num_bins).sample_rate(o.sample_rate).window(audio::parse_window_type(o.window));
  data::ExtractReport r;
  try {
    r = data::extract_features(o.input, o.output, eo);
  } catch (const data::DataError& e) {
    fmt::print(stderr, "crnn features: {}\n", e.what());
    return kExitUsage;
  }
  for (const auto& s : r.skipped) fmt::print(stderr, "features: skipped: {}\n", s);
  // Each failure was printed as it happened; the summary repeats the first few only.
  constexpr size_t kRepeated = 5;
  for (size_t i = 0; i < std::min(kRepeated, r.failed.size()); ++i) fmt::print(stderr, "features: FAILED: {}\n", r.failed[i]);
  if (r.failed.size() > kRepeated)
    fmt::print(stderr, "features: ... and {} more failed (each listed above)\n", r.failed.size() - kRepeated);
  if (!r.missing_note.empty()) fmt::print(stderr, "features: note: {}\n", r.missing_note);
  fmt::print("features: {} utterances: {} extracted{}, {} already present, {} skipped (too short), "
             "{} failed -> {}\n",
             r.total, r.extracted, r.changed ? fmt::format(" ({} of them again: their audio changed)", r.changed) : "",
             r.present, r.skipped.size(), r.failed.size(), o.output);
  if (r.workers > 0)
    fmt::print("features: {:.1f} s of audio in {:.2f} s wall with {} thread(s): real-time factor "
               "{:.0f} (audio seconds / wall second)\n",
               r.audio_seconds, r.wall_seconds, r.workers,
               r.wall_seconds > 0 ? r.audio_seconds / r.wall_seconds : 0.0);
  if (!r.upsampled.empty()) {
    size_t files = 0;
    std::vector<std::string> rates;
    for (const auto& [rate, n] : r.upsampled) {
      files += n;
      rates.push_back(fmt::format("{} Hz: {}", rate, n));
    }
    fmt::print(stderr,
               "features: note: {} of {} file(s) were upsampled to {} Hz from a lower rate ({}); they hold nothing "
               "above half their own rate, so if rates differ between classes the rate itself can be learned\n",
               files, r.extracted, o.sample_rate, fmt::join(rates, ", "));
  }
  if (!r.no_signal.empty())
    fmt::print(stderr,
               "features: note: {} file(s) {}: {}; they would be trained on and classified like speech and weigh in "
               "their speaker's normalization: remove them from the manifest\n",
               r.no_signal.size(), data::kNoSignal, first_few(r.no_signal, 5));
  if (!o.covered_manifest.empty())
    fmt::print("features: the {} of {} rows with features -> {} (a manifest to train on with {})\n", r.covered,
               r.total, o.covered_manifest, o.output);
  if (!r.failed.empty() && !o.keep_going) {
    fmt::print(stderr, "features: {} file(s) failed; exit status {} (use --keep-going to accept)\n",
               r.failed.size(), kExitPartial);
    return kExitPartial;
  }
  return 0;
}

Registrar reg{
    "features",
    "Extract log mel filterbank or eGeMAPS features for every file in a manifest into an HDF5 store",
    [](CLI::App& app) {
      auto o = std::make_shared<FeaturesOptions>();
      app.add_option("input", o->input,
                     "CSV manifest with 'path' and 'speaker' columns ('id' optional; docs/manifest.md; relative paths "
                     "are resolved against its directory); with --dump: the HDF5 feature file")
          ->required();
      app.add_option("-o,--output", o->output, "HDF5 feature file (created, or resumed)");
      app.add_option("--kind", o->kind, "Feature kind: fbank (log mel filterbank) or egemaps (25 eGeMAPS v02 LLDs)")
          ->check(CLI::IsMember({"fbank", "egemaps"}))
          ->capture_default_str();
      app.add_flag("--keep-going", o->keep_going,
                   "Exit 0 even if some files failed (they are still reported)");
      app.add_option("--sample-rate", o->sample_rate, "Resample audio to this rate (Hz)")
          ->check(CLI::Range(4000, 192000))
          ->capture_default_str();
      auto* bins = app.add_option("--num-bins", o->num_bins, "Mel bins (fbank)")
          ->check(CLI::Range(3, 1024))
          ->capture_default_str();
      auto* window = app.add_option("--window", o->window, "Analysis window (fbank)")
          ->check(CLI::IsMember({"povey", "hamming", "hanning", "rectangular", "blackman"}))
          ->capture_default_str();
      app.add_option("--covered-manifest", o->covered_manifest,
                     "Also write the manifest's rows that have features (not the failed or too-short files) to this "
                     "CSV: a manifest to train on with this feature file");
      app.add_option("--dump", o->dump_id, "Print the matrix stored for this id as CSV and exit");
      return [o, bins, window] {
        o->fbank_options_given = bins->count() > 0 || window->count() > 0;
        return run_features(*o);
      };
    },
    20};

}  // namespace
}  // namespace crnn::cli

// `crnn predict MODEL INPUT...`: audio files, directories, list files or stdin
// in; JSON lines or CSV out (infer/classifier.h does the work).
#include <fmt/core.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "crnn/audio/audio_files.h"
#include "crnn/cli/command.h"
#include "crnn/data/error.h"
#include "crnn/data/manifest.h"
#include "crnn/infer/classifier.h"
#include "crnn/infer/predictions.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"
#include "crnn/train/trainer.h"
#include "crnn/util/file_io.h"
#include "crnn/util/progress.h"
#include "crnn/data/normalization.h"
#include "crnn/util/text.h"

namespace {

namespace fs = std::filesystem;

struct PredictCliOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::string manifest, split = "all", format = "json", output, normalize = "auto", speaker;
  bool split_given = false;  ///< --split on the command line
  int64_t batch_size = 32;
  std::string precision = "fp32";
  double segment = 0, hop = 0;
};

void add_list(std::istream& in, const std::string& source, std::vector<std::string>& paths) {
  for (std::string line; std::getline(in, line);) {
    line = crnn::trim(line, " \t\r");
    if (!line.empty() && line[0] != '#') paths.push_back(line);
  }
  if (in.bad()) throw crnn::DataError(source + ": read error");
}

/// Files, directories (recursive, audio extensions only; other files are
/// reported and skipped), @LIST files (one path per line) and - (paths on stdin).
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const auto& in : inputs) {
    if (in == "-") {
      add_list(std::cin, "stdin", paths);
    } else if (in.size() > 1 && in[0] == '@') {
      const std::string list = in.substr(1);
      std::ifstream f(list);
      if (!f) throw crnn::DataError(list + ": cannot open the list file");
      add_list(f, list, paths);
    } else if (fs::is_directory(in)) {
      crnn::audio::AudioFileSearch found;
      try {
        found = crnn::audio::find_audio_files(in);
      } catch (const std::runtime_error& e) {
        throw crnn::data::DataError(e.what());
      }
      for (const auto& note : found.notes) fmt::print(stderr, "crnn predict: {}\n", note);
      paths.insert(paths.end(), found.files.begin(), found.files.end());
    } else {
      paths.push_back(in);  // a missing file is reported as that file's error
    }
  }
  return paths;
}

int run_predict(const PredictCliOptions& o) {
  using namespace crnn;
  if (!o.output.empty()) check_output_file_path(o.output);
  if (o.manifest.empty() && o.inputs.empty())
    throw data::DataError("nothing to classify: give audio files, directories, @LIST or -, or --manifest");
  if (!o.manifest.empty() && !o.inputs.empty())
    throw data::DataError("give either --manifest or audio inputs, not both");
  if (!o.manifest.empty() && !o.speaker.empty())
    throw data::DataError("--speaker is for audio inputs; with --manifest the speakers are the manifest's");
  if (o.manifest.empty() && o.split_given)
    throw data::DataError("--split " + o.split + " selects rows of a --manifest; audio inputs have no split");
  const std::string& split = o.split;
  const auto precision = train::precision_guard(o.precision, "--precision bf16");
  infer::Classifier classifier(o.model);
  std::vector<infer::Input> inputs;
  if (!o.manifest.empty()) {
    // The manifest's speakers: normalized per speaker exactly as `crnn eval` does.
    auto cfg = train::RunConfig::parse(classifier.model().bundle.config_toml, {}, classifier.model_path());
    cfg.data.manifest = o.manifest;
    const auto manifest = data::Manifest::read(o.manifest);
    const data::Manifest part = train::select_split(manifest, cfg.data, split);
    if (const auto w = train::training_speakers_warning(classifier.model().bundle.splits, part, split,
                                                        classifier.model_path());
        !w.empty())
      fmt::print(stderr, "crnn predict: warning: {}\n", w);
    const bool has_truth = manifest.has_task(classifier.task());
    const data::LabelSet known(classifier.labels(), classifier.task());
    size_t unknown = 0;
    for (const auto& u : part.utterances()) {
      inputs.push_back({u.id, u.path, u.speaker, has_truth ? u.label(classifier.task()) : "", {}});
      // A truth the model cannot predict is most often a typo: say where (the first few).
      const std::string& truth = inputs.back().truth;
      if (truth.empty() || known.contains(truth)) continue;
      if (++unknown <= 5)
        fmt::print(stderr, "crnn predict: warning: {}utterance '{}': label '{}' is not one of the model's classes ({})\n",
                   u.origin.empty() ? "" : u.origin + ": ", u.id, truth, fmt::join(classifier.labels(), ", "));
    }
    if (unknown > 5) fmt::print(stderr, "crnn predict: warning: {} rows in all have labels the model does not know\n", unknown);
  } else {
    // An input's id is its file name without the extension, unless another
    // input has the same one (a/x.wav, b/x.wav): then both are named by path.
    // (If even that leaves two alike — "x.wav" the stem of "y/x.wav.wav" — every id is its path.)
    const auto paths = expand_inputs(o.inputs);
    std::map<std::string, size_t> stems;
    for (const auto& p : paths) ++stems[fs::path(p).stem().string()];
    std::vector<std::string> ids;
    for (const auto& p : paths) {
      const std::string stem = fs::path(p).stem().string();
      ids.push_back(stems[stem] > 1 ? p : stem);
    }
    std::map<std::string, std::string> path_of_id;
    bool unique = true;  // the same file given twice may keep its one id
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto [it, fresh] = path_of_id.emplace(ids[i], paths[i]);
      if (!fresh && it->second != paths[i]) unique = false;
    }
    for (size_t i = 0; i < paths.size(); ++i) inputs.push_back({unique ? ids[i] : paths[i], paths[i], o.speaker, "", {}});
    if (inputs.empty()) throw data::DataError("no audio files among the inputs");
    // Several files, each its own speaker, for a per-speaker model: short or
    // one-class files then get noisy statistics. Say so once, with the ways out.
    if (inputs.size() > 1 && o.speaker.empty() &&
        (o.normalize == "speaker" ||
         (o.normalize == "auto" && classifier.trained_normalization() == infer::Normalization::speaker)))
      fmt::print(stderr,
                 "crnn predict: note: each file is standardized with its own statistics (normalization per speaker, "
                 "and no speakers are given); for files of one speaker give --speaker NAME, for several speakers a "
                 "--manifest with a speaker column (docs/training.md, Normalization)\n");
  }

  infer::PredictOptions po;
  po.batch_size = o.batch_size;
  try {
    po.normalization = infer::parse_normalization(o.normalize);
  } catch (const std::invalid_argument& e) {
    throw data::DataError(std::string("--normalize: ") + e.what());
  }
  po.segment_seconds = o.segment;
  po.hop_seconds = o.hop;
  const bool segments = o.segment > 0;
  // Files without speakers: "auto" for a per-speaker model means each file is its own speaker.
  // Progress (and the closing files/s line) on stderr for many files only, so
  // that a few files give nothing but their predictions.
  std::unique_ptr<Progress> progress;
  if (inputs.size() >= 50 || (inputs.size() > 1 && isatty(STDERR_FILENO))) {
    progress = std::make_unique<Progress>("predict", static_cast<int64_t>(inputs.size()), "files");
    po.on_features = [&](size_t, size_t) { progress->advance(1); };
  }
  std::vector<infer::Prediction> preds;
  try {
    preds = classifier.predict(std::move(inputs), po);
  } catch (const c10::ValueError& e) {  // --segment / --hop the model's frames cannot take
    throw data::DataError(std::string("--segment/--hop: ") + e.what_without_backtrace());
  }
  if (progress) progress->finish();

  size_t failed = 0, files = 0;
  double audio_seconds = 0;
  std::vector<std::string> no_signal;
  for (const auto& p : preds)
    if (p.no_signal)
      no_signal.push_back(p.segment < 0 ? p.id : fmt::format("{} {:.2f}-{:.2f} s", p.id, p.start_seconds, p.end_seconds));
  if (!no_signal.empty())
    fmt::print(stderr, "crnn predict: note: {} {} {}: {}; their labels carry no information\n", no_signal.size(),
               segments ? "segment(s)" : "input(s)", data::kNoSignal, first_few(no_signal, 5));
  std::string text = o.format == "csv" ? infer::predictions_csv_header(classifier.labels(), segments) : "";
  for (const auto& p : preds) {
    if (p.segment <= 0) {  // an input's first segment, or the whole input
      ++files;
      failed += !p.error.empty();
      audio_seconds += p.audio_seconds;
    }
    text += o.format == "csv" ? infer::prediction_csv_row(p, classifier.labels().size(), segments)
                              : infer::prediction_json_line(p, classifier.labels());
  }
  if (o.output.empty()) fmt::print("{}", text);
  else write_text_file_atomic(o.output, text);
  if (progress && progress->elapsed_seconds() > 0)
    fmt::print(stderr, "crnn predict: {} file(s), {:.1f} s of audio in {:.1f} s ({:.1f} files/s, real-time factor {:.0f})\n",
               files, audio_seconds, progress->elapsed_seconds(),
               static_cast<double>(files) / progress->elapsed_seconds(), audio_seconds / progress->elapsed_seconds());
  if (failed) fmt::print(stderr, "crnn predict: {} of {} file(s) failed\n", failed, files);
  return failed ? cli::kExitPartial : 0;
}

crnn::cli::Registrar reg{
    "predict",
    "Classify audio with a trained model: files, directories, @LIST, - (stdin) or --manifest, whole or in windows "
    "(--segment); JSON lines or CSV",
    [](CLI::App& app) {
      auto o = std::make_shared<PredictCliOptions>();
      app.add_option("model", o->model, "Model file (best.pt) or run directory")->required();
      app.add_option("inputs", o->inputs,
                     "Audio files, directories (searched recursively for audio files), @LIST (a file with one "
                     "path per line) or - (paths on stdin)");
      app.add_option("--manifest", o->manifest,
                     "Classify a manifest's rows instead, normalized per speaker exactly as `crnn eval` does");
      app.add_option("--speaker", o->speaker,
                     "The audio inputs are all this speaker's: normalized together (as training and `crnn eval` "
                     "normalize a speaker's utterances) instead of each file on its own");
      auto* split = app.add_option("--split", o->split,
                                   "With --manifest: train | valid | test | all (split as the model's config says)")
                        ->check(CLI::IsMember({"train", "valid", "test", "all"}))
                        ->capture_default_str();
      app.add_option("--format", o->format, "json (JSON lines, default) or csv")->check(CLI::IsMember({"json", "csv"}));
      app.add_option("-o,--output", o->output, "Write to FILE (atomically) instead of stdout");
      app.add_option("--normalize", o->normalize,
                     "auto: as the model was trained (default; per speaker: each file without a speaker is its own "
                     "speaker); speaker; utterance: each file with its own statistics; global: the training set's "
                     "(docs/training.md)")
          ->check(CLI::IsMember({"auto", "speaker", "utterance", "global"}));
      app.add_option("--segment", o->segment,
                     "Classify windows of SECONDS of each input instead of the whole input (a long recording): one "
                     "prediction per window, with its start and end in seconds (rounded to whole 10 ms frames). The "
                     "input is normalized as a whole first, so a window gets its file's (or speaker's) statistics, "
                     "whatever --normalize says")
          ->check(crnn::cli::PositiveSeconds())
          ->default_str("");  // not given: whole inputs
      app.add_option("--hop", o->hop,
                     "With --segment: SECONDS from one window's start to the next (default: the window length, back "
                     "to back; at most the window length). The last window ends where the input does")
          ->check(crnn::cli::PositiveSeconds())
          ->default_str("");
      app.add_option("--batch-size", o->batch_size, "Utterances per batch")->check(crnn::cli::IntRange(1, 1 << 20));
      crnn::cli::add_precision_option(app, o->precision);
      return [o, split] {
        o->split_given = split->count() > 0;
        return run_predict(*o);
      };
    },
    45};

}  // namespace

// `crnn predict MODEL.pt AUDIO...`: raw audio in, JSON lines out.
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "crnn/audio/feature_extractor.h"
#include "crnn/audio/read_audio.h"
#include "crnn/cli/command.h"
#include "crnn/data/error.h"
#include "crnn/data/normalization.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "crnn/util/error_text.h"
#include "crnn/util/json_text.h"

namespace {

struct PredictCliOptions {
  std::string model;
  std::vector<std::string> audio;
  std::string normalize = "auto";
};

int run_predict(const PredictCliOptions& o) {
  using namespace crnn;
  std::string model_path = o.model;
  if (std::filesystem::is_directory(model_path)) model_path = (std::filesystem::path(model_path) / "best.pt").string();
  train::LoadedModel loaded;
  audio::FeatureExtractor extractor;
  std::string normalize = o.normalize;
  loaded = train::load_model(model_path);  // a missing or corrupt file: data error (exit 2)
  try {
    extractor = audio::FeatureExtractor::parse(loaded.bundle.feature_extractor);  // fbank or eGeMAPS
  } catch (const std::invalid_argument& e) {
    throw data::DataError(model_path + ": corrupt model file (" + e.what() + ")");
  }
  // auto: as in training — a model trained with per-speaker statistics sees
  // the file as its own speaker, one trained with global statistics gets them.
  if (normalize == "auto") {
    const auto cfg = train::RunConfig::parse(loaded.bundle.config_toml, {}, model_path);
    normalize = cfg.data.normalization == "global" ? "global" : "utterance";
  }
  if (normalize == "global" && !loaded.bundle.global_stats.mean.defined()) {
    fmt::print(stderr, "crnn predict: {} has no global statistics\n", model_path);
    return cli::kExitUsage;
  }
  loaded.model->eval();
  torch::NoGradGuard no_grad;
  int failed = 0;
  for (const auto& path : o.audio) {
    nlohmann::json j;
    j["id"] = std::filesystem::path(path).stem().string();
    j["path"] = path;
    try {
      auto x = extractor.of_file(path);
      if (x.size(0) == 0) throw std::runtime_error(path + ": shorter than one feature frame");
      // An unseen speaker: by default the file is its own speaker (its own
      // statistics, as test speakers are normalized in training), else the
      // training set's global statistics.
      auto z = normalize == "global" ? data::apply(x, loaded.bundle.global_stats)
                                       : data::apply(x, data::compute_stats({x}));
      auto log_p = loaded.model(nn::PaddedSequence{z.unsqueeze(0), torch::tensor({x.size(0)}, torch::kLong)});
      auto p = log_p.exp()[0];
      const int64_t best = p.argmax().item<int64_t>();
      j["label"] = loaded.bundle.labels.at(best);
      nlohmann::json probs;
      for (size_t c = 0; c < loaded.bundle.labels.size(); ++c) probs[loaded.bundle.labels[c]] = p[c].item<double>();
      j["probabilities"] = probs;
      j["frames"] = x.size(0);
    } catch (const std::exception& e) {
      j["error"] = crnn::error_text(e);
      ++failed;
    }
    fmt::print("{}\n", crnn::json_text(j));
  }
  if (failed) fmt::print(stderr, "crnn predict: {} of {} file(s) failed\n", failed, o.audio.size());
  return failed ? cli::kExitPartial : 0;
}

crnn::cli::Registrar reg{
    "predict",
    "Classify audio files with a trained model (JSON lines: id, label, probabilities)",
    [](CLI::App& app) {
      auto o = std::make_shared<PredictCliOptions>();
      app.add_option("model", o->model, "Model file (best.pt) or run directory")->required();
      app.add_option("audio", o->audio, "WAV/FLAC files")->required();
      app.add_option("--normalize", o->normalize,
                     "auto: as the model was trained (default); utterance: each file standardized with "
                     "its own statistics; global: with the training set's")
          ->check(CLI::IsMember({"auto", "utterance", "global"}));
      return [o] { return run_predict(*o); };
    },
    45};

}  // namespace

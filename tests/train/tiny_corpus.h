#pragma once
// A tiny labelled "corpus" for end-to-end training tests: a CSV manifest and
// an HDF5 feature file with synthetic frames (no audio). Class "up" sequences
// have a rising first feature, class "down" a falling one, plus noise and a
// per-speaker offset (removed by per-speaker normalization).
#include <fmt/core.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "crnn/audio/feature_extractor.h"
#include "crnn/data/feature_store.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "support/test_support.h"

namespace crnn::test {

struct TinyCorpus {
  std::string manifest, features;
};

inline TinyCorpus make_tiny_corpus(const TempDir& dir, int speakers = 6, int per_class = 6,
                                   bool with_split = true) {
  TinyCorpus c{dir.file("tiny.csv"), dir.file("tiny.h5")};
  auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Truncate);
  data::FeatureAttributes attrs;
  attrs.sample_rate = 16000;
  attrs.frame_shift_ms = 10;
  attrs.feature_names = {"f0", "f1", "f2", "f3"};
  attrs.extractor = "kaldi-fbank num_bins=4";
  store.set_attributes(attrs);
  std::ofstream m(c.manifest);
  m << "id,path,speaker,trend" << (with_split ? ",split" : "") << "\n";
  auto gen = at::detail::createCPUGenerator(5);
  for (int s = 0; s < speakers; ++s) {
    const std::string split = s < speakers - 2 ? "train" : (s == speakers - 2 ? "valid" : "test");
    const double offset = 3.0 * s;
    for (int cls = 0; cls < 2; ++cls) {
      for (int i = 0; i < per_class; ++i) {
        const int64_t T = 20 + (i * 7 + s * 3) % 15;
        auto t = torch::linspace(-1, 1, T).unsqueeze(1);
        auto x = torch::randn({T, 4}, gen) * 0.3 + offset;
        x.narrow(1, 0, 1).add_(cls == 0 ? t : -t);
        const std::string id = fmt::format("s{}_c{}_{}", s, cls, i);
        store.write(id, x);
        m << id << ",audio/" << id << ".wav,spk" << s << "," << (cls == 0 ? "up" : "down");
        if (with_split) m << "," << split;
        m << "\n";
      }
    }
  }
  store.flush();
  return c;
}

/// A small explicit model config over the tiny corpus.
inline std::string tiny_config(const TinyCorpus& c, int max_epochs = 4) {
  return fmt::format(R"([data]
manifest = "{}"
features = "{}"
task = "trend"

[model]
recurrent_size = 8
dense_size = 8
average_last = 0

[[model.front_end]]
type = "lstm"
features = 6
window = 3
shift = 2
pool = 1
pool_shift = 1
source = "cell"
reduce = "last"

[train]
lr = 0.01
batch_size = 8
max_epochs = {}
patience = 12
seed = 3
)",
                     c.manifest, c.features, max_epochs);
}

/// An untrained tiny model file (4 features per frame, the tiny config's
/// model) and the model it holds.
struct TinyModel {
  std::string path;
  nn::SequenceClassifier model{nullptr};
};

/// Saves an untrained tiny model as `dir`/`name`, its bundle saying task
/// "trend", `labels` and 4-bin Kaldi fbank; `edit` may change the weights and
/// `edit_bundle` the bundle before saving.
inline TinyModel save_tiny_model(const TempDir& dir, const std::string& name = "best.pt",
                                 std::vector<std::string> labels = {"down", "up"},
                                 const std::function<void(nn::SequenceClassifier&)>& edit = {},
                                 const std::function<void(train::ModelBundle&)>& edit_bundle = {}) {
  auto c = make_tiny_corpus(dir, 3, 1);
  auto cfg = train::RunConfig::parse(tiny_config(c));
  torch::manual_seed(1);
  TinyModel s{dir.file(name), nn::SequenceClassifier(cfg.model_options(2, 4))};
  if (edit) edit(s.model);
  train::ModelBundle b;
  b.config_toml = cfg.to_toml();
  b.task = "trend";
  b.labels = std::move(labels);
  b.input_size = 4;
  b.feature_extractor = audio::FeatureExtractor::fbank(audio::FbankOptions().num_bins(4)).describe();
  if (edit_bundle) edit_bundle(b);
  train::save_checkpoint(s.path, s.model, nullptr, b, nullptr);
  return s;
}

}  // namespace crnn::test

// Writes the binary seed corpora of the fuzz targets into fuzz/corpus/ (run by
// hand when a format changes: build-fuzz/fuzz_make_seeds fuzz/corpus). The text
// seeds (manifests, configs) are committed as written. Seeds are kept tiny:
// libFuzzer mutates small inputs far faster, and the committed files stay small.
#include <sndfile.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "crnn/data/feature_store.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"

namespace fs = std::filesystem;

namespace {

void write_audio(const fs::path& path, int format, int rate, int channels, int frames) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error(path.string() + ": " + sf_strerror(nullptr));
  std::vector<float> x(static_cast<size_t>(frames) * channels);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * std::sin(0.07f * static_cast<float>(i));
  sf_writef_float(f, x.data(), frames);
  sf_close(f);
}

// The smallest model the tests use (tests/train/tiny_corpus.h), smaller still.
const char* kModelConfig = R"([data]
manifest = "m.csv"
features = "f.h5"
task = "trend"

[model]
recurrent_size = 4
dense_size = 4
average_last = 0

[[model.front_end]]
type = "lstm"
features = 3
window = 3
shift = 2
pool = 1
pool_shift = 1
source = "cell"
reduce = "last"
)";

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "fuzz/corpus";
  const fs::path audio = root / "fuzz_read_audio", model = root / "fuzz_model",
                 store = root / "fuzz_feature_store";
  for (const auto& d : {audio, model, store}) fs::create_directories(d);

  write_audio(audio / "pcm16_16k_mono.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 64);
  write_audio(audio / "float_8k_stereo.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 8000, 2, 32);
  write_audio(audio / "pcm24_44k_mono.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 1, 128);
  write_audio(audio / "pcm16_16k_stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 2, 64);

  auto cfg = crnn::train::RunConfig::parse(kModelConfig);
  torch::manual_seed(1);
  crnn::nn::SequenceClassifier net(cfg.model_options(2, 4));
  crnn::train::ModelBundle b;
  b.config_toml = cfg.to_toml();
  b.task = "trend";
  b.labels = {"down", "up"};
  b.input_size = 4;
  b.feature_extractor = "kaldi-fbank num_bins=4";
  crnn::train::save_checkpoint((model / "tiny.pt").string(), net, nullptr, b, nullptr);

  const fs::path h5 = store / "tiny.h5";
  fs::remove(h5);
  {
    auto s = crnn::data::FeatureStore::open(h5.string(), crnn::data::FeatureStore::Mode::Truncate);
    s.set_attributes({16000, 10.0, {"a", "b", "c"}, "kaldi-fbank num_bins=3"});
    s.write("utt1", torch::arange(12, torch::kFloat).reshape({4, 3}), "wav/utt1.wav");
    s.write("spk/utt2", torch::ones({2, 3}), "wav/utt2.wav");
  }
  for (const auto& d : {audio, model, store})
    for (const auto& e : fs::directory_iterator(d))
      std::printf("%s: %ju bytes\n", e.path().c_str(), static_cast<uintmax_t>(fs::file_size(e.path())));
  return 0;
}

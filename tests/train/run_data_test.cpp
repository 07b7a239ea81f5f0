#include <gtest/gtest.h>

#include <sstream>

#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"
#include "train/tiny_corpus.h"

using namespace crnn;

namespace {

train::RunData load(const test::TinyCorpus& c, const std::string& normalization) {
  auto cfg = train::RunConfig::parse(test::tiny_config(c), {"data.normalization=" + normalization});
  std::ostringstream log;
  return train::load_run_data(cfg.data, log);
}

/// The raw frames of the manifest rows with the given split, concatenated.
torch::Tensor raw_frames(const test::TinyCorpus& c, const std::string& split, const std::string& speaker = "") {
  auto m = data::Manifest::read(c.manifest);
  auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Read);
  std::vector<torch::Tensor> xs;
  for (const auto& u : m.utterances())
    if (u.split == split && (speaker.empty() || u.speaker == speaker)) xs.push_back(store.read(u.id));
  return torch::cat(xs).to(torch::kDouble);
}

}  // namespace

// Per speaker (SPEC §3): every speaker's frames, test speakers included, have
// mean 0 and population std 1 per feature.
TEST(RunData, SpeakerNormalizationStandardizesEachSpeaker) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto d = load(c, "speaker");
  // spk5 is the only test speaker of the tiny corpus.
  std::vector<torch::Tensor> test_frames;
  for (auto& e : d.test) test_frames.push_back(e.features);
  auto z = torch::cat(test_frames).to(torch::kDouble);
  EXPECT_LT(z.mean(0).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(z.std(0, /*unbiased=*/false).min().item<double>(), 1.0, 1e-4);
  EXPECT_NEAR(z.std(0, /*unbiased=*/false).max().item<double>(), 1.0, 1e-4);
}

// Global: every split is standardized with the mean and std of the raw
// training frames, computed here independently of the library.
TEST(RunData, GlobalNormalizationUsesTheTrainingFramesStatisticsForEverySplit) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto d = load(c, "global");
  auto train = raw_frames(c, "train");
  auto mean = train.mean(0), std = train.std(0, /*unbiased=*/false);

  std::vector<torch::Tensor> zs;
  for (auto& e : d.train) zs.push_back(e.features);
  auto z_train = torch::cat(zs).to(torch::kDouble);
  EXPECT_LT(z_train.mean(0).abs().max().item<double>(), 1e-5);

  zs.clear();
  for (auto& e : d.test) zs.push_back(e.features);
  auto expected = (raw_frames(c, "test") - mean) / std;
  EXPECT_TRUE(torch::allclose(torch::cat(zs).to(torch::kDouble), expected, 1e-4, 1e-4));
  // The tiny corpus's test speaker sits 3 units per speaker above the others:
  // global statistics keep that offset, per-speaker ones remove it.
  EXPECT_GT(expected.mean().item<double>(), 1.0);
}

TEST(RunData, UnknownNormalizationIsAConfigErrorNamingTheKey) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  try {
    train::RunConfig::parse(test::tiny_config(c), {"data.normalization=utterance"});
    FAIL() << "expected a ConfigError";
  } catch (const train::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.normalization"), std::string::npos) << e.what();
  }
}

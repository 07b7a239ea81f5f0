// `crnn features --kind egemaps` and a model trained on eGeMAPS features used
// by `crnn predict` on raw audio (the recorded extractor decides the features).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/feature_store.h"
#include "support/glottal_synth.h"
#include "support/small_synthetic_corpus.h"
#include "support/test_support.h"

using crnn::test::run_crnn;

TEST(EgemapsCli, FeaturesKindEgemapsStoresTheTwentyFiveNamedColumns) {
  crnn::test::TempDir dir;
  crnn::test::Vowel v;
  v.seconds = 0.5;
  crnn::test::write_audio(dir.file("vowel.wav"), crnn::test::synth_vowel(v).wave, 16000, 1);
  v.rate = 22050;  // resampled to 16 kHz
  crnn::test::write_audio(dir.file("vowel22k.wav"), crnn::test::synth_vowel(v).wave, 22050, 1);
  crnn::test::write_audio(dir.file("short.wav"), std::vector<float>(800, 0.1f), 16000, 1);  // 50 ms < 60 ms
  std::ofstream(dir.file("m.csv")) << "id,speaker,path,emotion\n"
                                   << "v,s1,vowel.wav,calm\nw,s1,vowel22k.wav,calm\nshort,s2,short.wav,calm\n";
  auto r = run_crnn("--threads 1 features '" + dir.file("m.csv") + "' -o '" + dir.file("e.h5") + "' --kind egemaps");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("short.wav): shorter than one 60 ms frame (800 samples at 16000 Hz)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("real-time factor"), std::string::npos) << r.out;

  {  // the store is closed at the end of the block: HDF5 locks an open file
    auto store = crnn::data::FeatureStore::open(dir.file("e.h5"), crnn::data::FeatureStore::Mode::Read);
    EXPECT_EQ(store.feature_names(), crnn::audio::egemaps_feature_names(true));
    EXPECT_EQ(store.extractor().rfind("egemaps-v02 smooth=true sample_rate=16000", 0), 0u) << store.extractor();
    EXPECT_EQ(store.frame_shift_ms(), 10.0);
    ASSERT_TRUE(store.contains("v"));
    EXPECT_FALSE(store.contains("short"));
    const auto expected = crnn::audio::compute_egemaps(crnn::audio::read_audio(dir.file("vowel.wav"), 16000));
    EXPECT_TRUE(torch::allclose(store.read("v"), expected, 1e-5, 1e-5));
    EXPECT_EQ(store.read("w").size(1), 25);
  }

  // A store made with fbank options is not resumed with eGeMAPS (and vice versa).
  r = run_crnn("features '" + dir.file("m.csv") + "' -o '" + dir.file("e.h5") + "' --kind fbank");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("holds features made with other options"), std::string::npos) << r.out;
  r = run_crnn("features '" + dir.file("m.csv") + "' -o '" + dir.file("x.h5") + "' --kind mfcc");
  EXPECT_NE(r.status, 0) << r.out;
  // fbank's options with eGeMAPS are a mistake, not something to ignore.
  r = run_crnn("features '" + dir.file("m.csv") + "' -o '" + dir.file("y.h5") + "' --kind egemaps --num-bins 40");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "--num-bins and --window apply to --kind fbank only (not egemaps)")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("y.h5")));
}

TEST(EgemapsCli, PredictComputesTheFeaturesTheModelWasTrainedOn) {
  if (!crnn::test::espeak_available()) GTEST_SKIP() << "espeak-ng not installed (scripts/setup installs it)";
  crnn::test::TempDir dir;
  auto manifest = crnn::test::small_synthetic_corpus(dir);
  const std::string m = dir.file("corpus/manifest.csv"), f = dir.file("e.h5");
  auto r = run_crnn("--threads 2 features '" + m + "' -o '" + f + "' --kind egemaps");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ofstream(dir.file("c.toml")) << "[data]\nmanifest = \"" << m << "\"\nfeatures = \"" << f
                                    << "\"\ntask = \"arousal\"\n[model]\nrecurrent_size = 8\ndense_size = 8\n"
                                       "average_last = 0\n[train]\nbatch_size = 8\nmax_epochs = 1\nseed = 1\n";
  r = run_crnn("--threads 1 train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_crnn("predict '" + dir.file("run/best.pt") + "' '" + manifest.utterances()[0].path + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  ASSERT_TRUE(j.contains("label")) << r.out;
  // The frames predict reports are eGeMAPS frames (T + 1 for T whole 60 ms windows), not fbank frames.
  const auto wave = crnn::audio::read_audio(manifest.utterances()[0].path, 16000);
  EXPECT_EQ(j["frames"].get<int64_t>(), crnn::audio::egemaps_num_frames(wave.size(0)) + 1);
  // A file too short for one 60 ms window: the reason `crnn features` gives, with the numbers.
  crnn::test::write_audio(dir.file("short.wav"), std::vector<float>(800, 0.1f), 16000, 1);
  r = run_crnn("predict '" + dir.file("run/best.pt") + "' '" + dir.file("short.wav") + "'");
  EXPECT_TRUE(crnn::test::contains(r.out, "short.wav: shorter than one 60 ms frame (800 samples at 16000 Hz)")) << r.out;
}

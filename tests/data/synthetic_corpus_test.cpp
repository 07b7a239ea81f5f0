// The espeak-ng synthetic corpus of `crnn demo` (docs/demo.md). Tiny corpora
// (a few speakers, 1–4 utterances per class) keep the whole file at a few
// seconds; the tests skip when espeak-ng is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "crnn/audio/read_audio.h"
#include "crnn/data/splits.h"
#include "crnn/data/synthetic_corpus.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::contains;
using crnn::test::error_of;
using crnn::test::TempDir;
namespace fs = std::filesystem;

namespace {

#define REQUIRE_ESPEAK() \
  if (!crnn::test::espeak_available()) GTEST_SKIP() << "espeak-ng not installed (scripts/setup installs it)"

SyntheticCorpusOptions tiny(const std::string& dir, uint64_t seed = 7) {
  SyntheticCorpusOptions o;
  o.out_dir = dir;
  o.speakers = 4;
  o.utterances_per_class = 2;
  o.seed = seed;
  return o;
}

std::string bytes(const std::string& path) { return crnn::read_text_file(path); }

// One corpus shared by the read-only tests (generation is the slow part).
class SyntheticCorpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!crnn::test::espeak_available()) return;
    dir_ = new TempDir;
    manifest_ = new Manifest(make_synthetic_corpus(tiny(dir_->str())));
  }
  static void TearDownTestSuite() {
    delete manifest_;
    delete dir_;
    manifest_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { REQUIRE_ESPEAK(); }
  static TempDir* dir_;
  static Manifest* manifest_;
};
TempDir* SyntheticCorpus::dir_ = nullptr;
Manifest* SyntheticCorpus::manifest_ = nullptr;

}  // namespace

TEST_F(SyntheticCorpus, ManifestHasAllRowsTasksAndRelativePaths) {
  const Manifest& m = *manifest_;
  EXPECT_EQ(m.size(), 4u * 2u * 2u);
  EXPECT_TRUE(m.has_task("arousal"));
  EXPECT_TRUE(m.has_task("speaker_sex"));
  EXPECT_TRUE(m.has_split());
  EXPECT_EQ(m.speakers().size(), 4u);
  // The file on disk is portable: relative paths, re-read equal to the result.
  const std::string csv = bytes((dir_->path() / "manifest.csv").string());
  EXPECT_TRUE(contains(csv, ",wav/spk01_calm_001.wav,")) << csv;
  EXPECT_EQ(csv.find(dir_->str()), std::string::npos);
  EXPECT_EQ(Manifest::read((dir_->path() / "manifest.csv").string()).to_csv(), m.to_csv());
  EXPECT_EQ(LabelSet::from_manifest(m, "arousal").names(), arousal_labels());
  EXPECT_EQ(LabelSet::from_manifest(m, "speaker_sex").names(), speaker_sex_labels());
}

TEST_F(SyntheticCorpus, EveryFileDecodesAt16kHz) {
  EXPECT_TRUE(manifest_->validate_paths().empty());
  for (const auto& u : manifest_->utterances()) {
    EXPECT_EQ(crnn::audio::audio_info(u.path).sample_rate, 22050) << u.path;  // espeak-ng's rate, kept
    torch::Tensor wave = crnn::audio::read_audio(u.path, 16000);
    ASSERT_EQ(wave.dim(), 1);
    EXPECT_GT(wave.size(0) / 16000.0, 0.3) << u.path;
    EXPECT_GT(wave.abs().max().item<float>(), 0.05f) << u.path << " is (nearly) silent";
  }
}

TEST_F(SyntheticCorpus, SplitsAreSpeakerIndependentAndSexBalanced) {
  EXPECT_NO_THROW(check_speaker_independent(*manifest_));
  std::map<std::string, std::set<std::string>> splits_of, sexes_of;
  std::map<std::string, std::set<std::string>> sexes_in_split;
  for (const auto& u : manifest_->utterances()) {
    splits_of[u.speaker].insert(u.split);
    sexes_of[u.speaker].insert(u.label("speaker_sex"));
    sexes_in_split[u.split].insert(u.label("speaker_sex"));
  }
  for (const auto& [spk, s] : splits_of) EXPECT_EQ(s.size(), 1u) << spk;
  for (const auto& [spk, s] : sexes_of) EXPECT_EQ(s.size(), 1u) << spk;
  // 4 speakers (2 female, 2 male): 1 test, 1 valid, 2 train of both sexes.
  EXPECT_EQ(speaker_labels(*manifest_, "speaker_sex").size(), 4u);
  EXPECT_EQ(sexes_in_split["train"].size(), 2u);
  EXPECT_EQ(manifest_->subset("test").speakers().size(), 1u);
  EXPECT_EQ(manifest_->subset("valid").speakers().size(), 1u);
  EXPECT_EQ(manifest_->subset("train").speakers().size(), 2u);
}

TEST_F(SyntheticCorpus, ClassesAreBalancedPerSpeaker) {
  std::map<std::pair<std::string, std::string>, int> count;
  for (const auto& u : manifest_->utterances()) ++count[{u.speaker, u.label("arousal")}];
  EXPECT_EQ(count.size(), 4u * 2u);
  for (const auto& [key, n] : count) EXPECT_EQ(n, 2) << key.first << " " << key.second;
}

TEST_F(SyntheticCorpus, SecondCallWithSameOptionsIsSkipped) {
  const auto wav = manifest_->utterances().front().path;
  const auto mtime = fs::last_write_time(wav);
  EXPECT_TRUE(fs::exists(dir_->path() / "corpus.json"));
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto t0 = std::chrono::steady_clock::now();
  Manifest again = make_synthetic_corpus(tiny(dir_->str()), [&](int64_t d, int64_t t) { calls.push_back({d, t}); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(again.to_csv(), manifest_->to_csv());
  EXPECT_EQ(fs::last_write_time(wav), mtime);  // not rewritten
  EXPECT_LT(seconds, 0.5);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].first, 16);
  EXPECT_EQ(calls[0].second, 16);
}

TEST(SyntheticCorpusGeneration, SameSeedSameBytesOtherOptionsRegenerate) {
  REQUIRE_ESPEAK();
  TempDir a, b;
  std::vector<int64_t> done;
  auto opts_b = tiny(b.str());
  opts_b.jobs = 3;  // scheduling must not matter
  Manifest ma = make_synthetic_corpus(tiny(a.str()), [&](int64_t d, int64_t t) {
    EXPECT_EQ(t, 16);
    done.push_back(d);
  });
  Manifest mb = make_synthetic_corpus(opts_b);
  ASSERT_EQ(done.size(), 16u);
  for (size_t i = 0; i < done.size(); ++i) EXPECT_EQ(done[i], static_cast<int64_t>(i + 1));

  EXPECT_EQ(bytes(a.str() + "/manifest.csv"), bytes(b.str() + "/manifest.csv"));
  EXPECT_EQ(bytes(a.str() + "/corpus.json"), bytes(b.str() + "/corpus.json"));
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(bytes(ma[i].path), bytes(mb[i].path)) << ma[i].id;

  // Another seed: other voices / prosody, so other audio.
  Manifest mc = make_synthetic_corpus(tiny(b.str(), 8));
  int differ = 0;
  for (size_t i = 0; i < ma.size(); ++i) differ += bytes(ma[i].path) != bytes(mc[i].path);
  EXPECT_GT(differ, 12);
  // Fewer utterances: regenerated, and files of the larger corpus are gone.
  auto smaller = tiny(b.str(), 8);
  smaller.utterances_per_class = 1;
  Manifest md = make_synthetic_corpus(smaller);
  EXPECT_EQ(md.size(), 8u);
  EXPECT_FALSE(fs::exists(b.path() / "wav" / "spk01_calm_002.wav"));
  EXPECT_TRUE(contains(bytes(b.str() + "/corpus.json"), "\"utterances_per_class\": 1"));
}

// An independently checkable acoustic property: for the same speaker and
// sentence, "excited" is shorter (faster) and louder (higher RMS) than "calm".
// With separation 2.5 the class shift dwarfs the jitter, so the direction is
// certain, not luck of the seed.
TEST(SyntheticCorpusGeneration, ExcitedIsFasterAndLouderThanCalm) {
  REQUIRE_ESPEAK();
  TempDir dir;
  SyntheticCorpusOptions o;
  o.out_dir = dir.str();
  o.speakers = 3;
  o.utterances_per_class = 4;
  o.separation = 2.5;
  Manifest m = make_synthetic_corpus(o);
  ASSERT_EQ(m.size(), 24u);
  double log_duration_ratio = 0, log_rms_ratio = 0;
  int pairs = 0, shorter = 0, louder = 0;
  for (const auto& u : m.utterances()) {
    if (u.label("arousal") != "calm") continue;
    std::string excited_id = u.id;
    excited_id.replace(excited_id.find("_calm_"), 6, "_excited_");
    const auto calm = crnn::audio::read_audio(u.path);
    const auto excited = crnn::audio::read_audio(m.find(excited_id).path);
    const double dc = calm.size(0), de = excited.size(0);
    const double rc = calm.pow(2).mean().sqrt().item<double>(), re = excited.pow(2).mean().sqrt().item<double>();
    log_duration_ratio += std::log(de / dc);
    log_rms_ratio += std::log(re / rc);
    shorter += de < dc;
    louder += re > rc;
    ++pairs;
  }
  ASSERT_EQ(pairs, 12);
  log_duration_ratio /= pairs;
  log_rms_ratio /= pairs;
  EXPECT_LT(log_duration_ratio, std::log(0.85)) << "excited/calm duration " << std::exp(log_duration_ratio);
  EXPECT_GT(log_rms_ratio, std::log(1.2)) << "excited/calm RMS " << std::exp(log_rms_ratio);
  EXPECT_GE(shorter, 10);
  EXPECT_GE(louder, 10);
}

TEST(SyntheticCorpusGeneration, ClearErrors) {
  TempDir dir;
  auto o = tiny((dir.path() / "corpus").string());
  o.espeak = "/nonexistent/espeak-ng";
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }),
                       "espeak-ng not found: install it (scripts/setup installs it)"));
  o.espeak = "crnn-no-such-espeak-ng";
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }), "espeak-ng not found: install it"));

  o = tiny("");
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }), "out_dir is empty"));
  o = tiny(dir.str());
  o.speakers = 2;
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }), "speakers must be >= 3"));

  if (!crnn::test::espeak_available()) return;
  // A regular file where a directory should be: cannot be created (even as root).
  const std::string file = dir.write("occupied", "x");
  o = tiny(file + "/corpus");
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }), "cannot create output directory"));
  o = tiny(file);
  EXPECT_TRUE(contains(error_of([&] { make_synthetic_corpus(o); }), file));
}

#include <gtest/gtest.h>

#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "crnn/audio/feature_extractor.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/error.h"
#include "crnn/data/manifest.h"
#include "crnn/train/config.h"
#include "crnn/train/run_data.h"
#include "crnn/util/file_io.h"
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

namespace {
/// 24 speakers × 10 utterances, each speaker with one emotion label, every row
/// marked "train" (a split column that folds must override).
data::Manifest actors_manifest() {
  data::Manifest m({"emotion", "fold_column"});
  for (int s = 0; s < 24; ++s)
    for (int k = 0; k < 10; ++k) {
      data::Utterance u;
      u.id = fmt::format("a{:02d}_{}", s, k);
      u.path = "/nonexistent/" + u.id + ".wav";
      u.speaker = fmt::format("actor{:02d}", s);
      u.labels["emotion"] = s % 2 ? "happy" : "sad";
      u.labels["fold_column"] = s < 16 ? "train" : (s < 20 ? "valid" : "test");
      u.split = "train";
      m.add(u);
    }
  return m;
}

std::map<std::string, std::set<std::string>> speakers_by_split(const data::Manifest& m) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& u : m.utterances()) out[u.split].insert(u.speaker);
  return out;
}
}  // namespace

// data.folds (the RAVDESS configs: 6 folds, fold 0): whole speakers per split,
// equal folds of 4 actors, fold i+1 validates round i — so the test speakers of
// round i+1 are the validation speakers of round i — and over the k rounds
// every speaker is tested exactly once. The manifest's own split is ignored.
TEST(RunData, FoldsSplitWholeSpeakersAndRoundIPlusOneTestsRoundIsValidation) {
  const auto m = actors_manifest();
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  config.folds = 6;
  std::vector<std::map<std::string, std::set<std::string>>> rounds;
  std::map<std::string, int> tested;
  for (int64_t fold = 0; fold < 6; ++fold) {
    config.fold = fold;
    const auto by = speakers_by_split(train::assign_splits(m, config));
    ASSERT_EQ(by.size(), 3u) << "fold " << fold;
    EXPECT_EQ(by.at("test").size(), 4u);
    EXPECT_EQ(by.at("valid").size(), 4u);
    EXPECT_EQ(by.at("train").size(), 16u);
    std::set<std::string> all;
    for (const auto& [split, speakers] : by) all.insert(speakers.begin(), speakers.end());
    EXPECT_EQ(all.size(), 24u) << "a speaker in two splits";
    for (const auto& s : by.at("test")) ++tested[s];
    rounds.push_back(by);
  }
  for (int64_t fold = 0; fold < 6; ++fold)
    EXPECT_EQ(rounds[fold].at("valid"), rounds[(fold + 1) % 6].at("test")) << "fold " << fold;
  EXPECT_EQ(tested.size(), 24u);
  for (const auto& [speaker, times] : tested) EXPECT_EQ(times, 1) << speaker;
  config.fold = 6;
  EXPECT_THROW(train::assign_splits(m, config), data::DataError);
}

// data.split_column: the split is read from another label column, and a value
// other than train / valid / test is an error naming the row and the column.
TEST(RunData, SplitColumnIsReadFromTheNamedLabelColumn) {
  auto m = actors_manifest();
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  config.split_column = "fold_column";
  const auto by = speakers_by_split(train::assign_splits(m, config));
  EXPECT_EQ(by.at("train").size(), 16u);
  EXPECT_EQ(by.at("valid"), (std::set<std::string>{"actor16", "actor17", "actor18", "actor19"}));
  EXPECT_EQ(by.at("test"), (std::set<std::string>{"actor20", "actor21", "actor22", "actor23"}));
  m.mutable_at(3).labels["fold_column"] = "dev";
  EXPECT_THROW(train::assign_splits(m, config), train::ConfigError);
  EXPECT_TRUE(test::contains(test::error_of([&] { train::assign_splits(m, config); }),
                             "actors.csv: row 'a00_3': split column 'fold_column' holds 'dev' (expected train, valid "
                             "or test)"));
  config.split_column = "nope";
  EXPECT_TRUE(test::contains(test::error_of([&] { train::assign_splits(m, config); }),
                             "data.split_column: the manifest has no column 'nope'"));
}

// The data protocol follows the data (a user's own corpus): a manifest with a
// split column is used as it is with data.folds = 0 — what every preset dump
// now says — and the source of the split is reported in words; without a split
// column the split is kDefaultFolds-fold speaker-group cross-validation, the
// same as asking for it; asking for folds over a manifest that has a split
// says that the manifest's split is not used.
TEST(RunData, TheManifestsOwnSplitIsUsedUnlessFoldsAreAskedFor) {
  auto m = actors_manifest();
  for (size_t i = 0; i < m.size(); ++i) m.mutable_at(i).split = m.mutable_at(i).label("fold_column");
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  EXPECT_EQ(train::RunConfig::for_preset("emotion-clstm").data.folds, 0);
  std::string source;
  auto by = speakers_by_split(train::assign_splits(m, config, &source));
  EXPECT_EQ(by.at("train").size(), 16u);
  EXPECT_EQ(by.at("valid"), (std::set<std::string>{"actor16", "actor17", "actor18", "actor19"}));
  EXPECT_EQ(by.at("test"), (std::set<std::string>{"actor20", "actor21", "actor22", "actor23"}));
  EXPECT_EQ(source, "the manifest's column 'split' (train / valid / test)");

  config.folds = 6;
  const auto asked = speakers_by_split(train::assign_splits(m, config, &source));
  EXPECT_TRUE(test::contains(source, "6-fold speaker-group cross-validation (data.folds = 6)")) << source;
  EXPECT_TRUE(test::contains(source, "the manifest's own split column is not used")) << source;

  data::Manifest no_split({"emotion"});
  for (auto u : m.utterances()) {
    u.split.clear();
    u.labels.erase("fold_column");
    no_split.add(u);
  }
  ASSERT_FALSE(no_split.has_split());
  config.folds = 0;
  const auto automatic = speakers_by_split(train::assign_splits(no_split, config, &source));
  EXPECT_TRUE(test::contains(source, "the manifest has no split column")) << source;
  EXPECT_EQ(train::kDefaultFolds, 6);
  EXPECT_EQ(automatic, asked);  // the same speakers as data.folds = 6, fold 0
}

// Training (a new run) refuses such a manifest; a resumed run, whose split the
// checkpoint holds, loads it as before.
TEST(RunData, ANewRunRefusesASplitUnderAnotherNameAResumedRunDoesNot) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::string text = crnn::read_text_file(c.manifest);
  text.replace(text.find(",split\n"), 7, ",Split\n");
  std::ofstream(c.manifest, std::ios::trunc) << text;
  const auto cfg = train::RunConfig::parse(test::tiny_config(c, 1));
  std::stringstream log;
  EXPECT_TRUE(test::contains(test::error_of([&] { train::load_run_data(cfg.data, log); }),
                             "its column 'Split' holds only train / valid / test"));
  EXPECT_NO_THROW(train::load_run_data(cfg.data, log, /*new_run=*/false));
}

// A split under another name ('Split', 'set') is not taken for a label column
// while crnn cross-validates instead: that would train on the test speakers
// the user set apart. data.split_column uses it; data.folds cross-validates.
TEST(RunData, ASplitColumnUnderAnotherNameIsNotSilentlyIgnored) {
  auto m = actors_manifest();  // "fold_column": train / valid / test
  for (size_t i = 0; i < m.size(); ++i) m.mutable_at(i).split.clear();  // and no "split"
  ASSERT_FALSE(m.has_split());
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  EXPECT_EQ(test::error_of([&] { train::refuse_split_under_another_name(m, config); }),
            "actors.csv: the manifest has no 'split' column, but its column 'fold_column' holds only train / valid / "
            "test: rename it to 'split', or set data.split_column = \"fold_column\" (or set data.folds = K to "
            "cross-validate over speakers instead, as crnn does for a manifest without a split; docs/splits.md)");
  // Evaluating a run trained before (cross-validated) splits as it did.
  std::string source;
  train::assign_splits(m, config, &source);
  EXPECT_TRUE(test::contains(source, "the manifest has no split column")) << source;
  config.split_column = "fold_column";
  EXPECT_NO_THROW(train::refuse_split_under_another_name(m, config));
  EXPECT_EQ(speakers_by_split(train::assign_splits(m, config)).at("test").size(), 4u);
  config.split_column = "split";
  config.folds = 6;
  EXPECT_NO_THROW(train::refuse_split_under_another_name(m, config));
  // A column with other values too is a label column like any other.
  config.folds = 0;
  auto other = m;
  other.mutable_at(0).labels["fold_column"] = "holdout";
  EXPECT_NO_THROW(train::refuse_split_under_another_name(other, config));
}

// `crnn eval --split`: "all" is every row; "test" of a manifest whose split
// column has test rows is exactly those rows, even with no training or
// validation rows at all (a test-only manifest), where assign_splits has no
// speakers to carve a validation set from.
TEST(RunData, SelectSplitTestOfATestOnlyManifestIsItsRowsAndAllIsEveryRow) {
  auto m = actors_manifest();
  for (size_t i = 0; i < m.size(); ++i) m.mutable_at(i).split = "test";
  train::DataConfig config;
  config.manifest = "test_only.csv";
  config.task = "emotion";
  const auto test = train::select_split(m, config, "test");
  ASSERT_EQ(test.size(), m.size());
  for (size_t i = 0; i < test.size(); ++i) EXPECT_EQ(test[i].id, m[i].id);
  EXPECT_EQ(train::select_split(m, config, "all").size(), m.size());
  // No training rows: the training split is empty, an error naming the manifest.
  EXPECT_TRUE(test::contains(test::error_of([&] { train::select_split(m, config, "train"); }), "test_only.csv"));

  // With training speakers and no valid rows, "test" is still the marked test
  // rows (actors 16..23), though validation speakers get carved from training.
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i].speaker < "actor16") m.mutable_at(i).split = "train";
  const auto test2 = train::select_split(m, config, "test");
  EXPECT_EQ(test2.size(), 80u);
  for (const auto& u : test2.utterances()) EXPECT_GE(u.speaker, "actor16");
  EXPECT_FALSE(train::select_split(m, config, "valid").empty());
}

// Every other split is assign_splits': speaker folds with data.folds (the
// manifest's own split ignored), or data.split_column's label column.
TEST(RunData, SelectSplitFollowsFoldsAndTheSplitColumn) {
  const auto m = actors_manifest();  // its split column says "train" everywhere
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  config.split_column = "fold_column";
  for (const auto& [split, first, last] : {std::tuple<const char*, int, int>{"train", 0, 15}, {"valid", 16, 19},
                                           {"test", 20, 23}}) {
    std::set<std::string> expected;
    for (int s = first; s <= last; ++s) expected.insert(fmt::format("actor{:02d}", s));
    const auto part = train::select_split(m, config, split);
    EXPECT_EQ(part.speakers().size(), expected.size()) << split;
    EXPECT_EQ(speakers_by_split(part).at(split), expected) << split;
    EXPECT_EQ(part.size(), 10 * expected.size()) << split;
  }

  config.split_column = "split";
  config.folds = 6;
  std::set<std::string> seen;
  size_t rows = 0;
  for (const char* split : {"train", "valid", "test"}) {
    const auto part = train::select_split(m, config, split);
    rows += part.size();
    for (const auto& s : part.speakers()) EXPECT_TRUE(seen.insert(s).second) << s << " in two splits";
  }
  EXPECT_EQ(rows, m.size());
  EXPECT_EQ(seen.size(), 24u);
  EXPECT_EQ(train::select_split(m, config, "test").speakers().size(), 4u);  // one fold of 24 / 6
}

TEST(RunData, SelectSplitErrorsNameTheProblem) {
  auto m = actors_manifest();
  train::DataConfig config;
  config.manifest = "actors.csv";
  config.task = "emotion";
  EXPECT_TRUE(test::contains(test::error_of([&] { train::select_split(m, config, "dev"); }),
                             "unknown split 'dev' (expected train, valid, test or all)"));
  // Without any split the rows get 6-fold speaker-group cross-validation: 4 of the 24 actors are the test set.
  for (size_t i = 0; i < m.size(); ++i) m.mutable_at(i).split.clear();
  EXPECT_EQ(speakers_by_split(train::select_split(m, config, "test")).at("test").size(), 4u);
}

// The command a "does not cover" error suggests makes features of the store's
// own kind: `crnn features` without --kind egemaps would refuse to add fbank
// rows to an eGeMAPS store.
TEST(RunData, CoverErrorSuggestsTheCommandForTheStoresOwnKind) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Append);
    auto attrs = store.attributes();
    attrs.extractor = audio::FeatureExtractor::egemaps({}).describe() + " resampler=soxr-hq";
    store.set_attributes(attrs);
    std::ofstream(c.manifest, std::ios::app) << "ghost,audio/ghost.wav,spk0,up,train\n";
  }
  auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Read);
  try {
    train::check_features_cover(store, data::Manifest::read(c.manifest), c.features, c.manifest);
    ADD_FAILURE() << "no error for a manifest row without features";
  } catch (const data::DataError& e) {
    EXPECT_TRUE(test::contains(e.what(), fmt::format("run `crnn features {} -o {} --kind egemaps` to extract them",
                                                     c.manifest, c.features)));
    EXPECT_TRUE(test::contains(e.what(), "(first: ghost)"));
  }
}

// A row whose audio file changed since its features were computed: train and
// eval refuse the store, naming the utterance and the command that updates it.
TEST(RunData, CoverErrorNamesFeaturesOfAudioThatChangedSince) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::filesystem::create_directories(dir.path() / "audio");
  const std::string wav = dir.file("audio/s0_c0_0.wav");
  std::ofstream(wav, std::ios::binary) << "the audio as it was";
  std::filesystem::last_write_time(wav, std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  {
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Append);
    const auto x = store.read("s0_c0_0");
    store.remove("s0_c0_0");
    store.write("s0_c0_0", x, wav, stamp_of_file(wav));
  }
  const auto manifest = data::Manifest::read(c.manifest);
  {
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Read);
    EXPECT_NO_THROW(train::check_features_cover(store, manifest, c.features, c.manifest));
  }
  std::ofstream(wav, std::ios::binary) << "the audio, now edited";
  auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Read);
  try {
    train::check_features_cover(store, manifest, c.features, c.manifest);
    ADD_FAILURE() << "no error for features of audio that changed since";
  } catch (const data::DataError& e) {
    EXPECT_TRUE(test::contains(e.what(), fmt::format("{}: the features of 1 utterance(s) were computed from an earlier "
                                                     "version of their audio file",
                                                     c.features)))
        << e.what();
    EXPECT_TRUE(test::contains(e.what(), fmt::format("e.g. 's0_c0_0' ({}); run `crnn features {} -o {} --num-bins 4` to "
                                                     "recompute them",
                                                     wav, c.manifest, c.features)))
        << e.what();
  }
}

// Too few speakers for the folds: the error says what to change (a split
// column, or data.folds within the speaker count), not just that k-fold failed.
TEST(RunData, TooFewSpeakersForTheFoldsSaysHowToFixIt) {
  data::Manifest few({"emotion"});
  for (int s = 0; s < 4; ++s)
    for (int k = 0; k < 2; ++k) {
      data::Utterance u;
      u.id = fmt::format("s{}_{}", s, k);
      u.path = "/nonexistent/" + u.id + ".wav";
      u.speaker = fmt::format("spk{}", s);
      u.labels["emotion"] = k ? "happy" : "sad";
      few.add(u);
    }
  train::DataConfig config;
  config.manifest = "few.csv";
  config.task = "emotion";
  EXPECT_TRUE(test::contains(test::error_of([&] { train::assign_splits(few, config); }),
                             "few.csv: the manifest has no split column, so crnn splits it by speakers into 6 folds, "
                             "but it has only 4 speaker(s); add a split column (train / valid / test per row), or set "
                             "data.folds = K with 3 <= K <= 4"));
  config.folds = 4;
  EXPECT_EQ(speakers_by_split(train::assign_splits(few, config)).size(), 3u);
  // Fewer than 3 speakers: no number of folds works, and the message does not suggest one.
  data::Manifest two({"emotion"});
  for (size_t i = 0; i < 4; ++i) two.add(few[i]);  // spk0 and spk1
  EXPECT_EQ(test::error_of([&] { train::assign_splits(two, config); }),
            "few.csv: 2 speaker(s); speaker-independent training needs at least 3 (one each for train, validation "
            "and test)");
  config.folds = 0;
  EXPECT_EQ(test::error_of([&] { train::assign_splits(two, config); }),
            "few.csv: 2 speaker(s); speaker-independent training needs at least 3 (one each for train, validation "
            "and test)");
  config.folds = 4;
  config.folds = 5;
  EXPECT_THROW(train::assign_splits(few, config), train::ConfigError);
  EXPECT_TRUE(test::contains(test::error_of([&] { train::assign_splits(few, config); }),
                             "few.csv: data.folds = 5, but the manifest has only 4 speaker(s); set data.folds to at "
                             "most 4"));
}

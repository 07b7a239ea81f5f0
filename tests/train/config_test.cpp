#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "crnn/train/config.h"
#include "crnn/train/config_keys.h"
#include "crnn/util/file_io.h"

using crnn::train::ConfigError;
using crnn::train::RunConfig;

namespace {
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    RunConfig::parse(text, overrides, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, PresetExpandsToThePapersModel) {
  auto c = RunConfig::parse("[model]\npreset = \"emotion-eclstm\"\n");
  ASSERT_EQ(c.model.front_end.size(), 2u);
  EXPECT_TRUE(c.model.front_end[0].extended());
  EXPECT_EQ(c.model.recurrent_size, 256);
  EXPECT_EQ(c.model.average_last, 4);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.002);
  EXPECT_DOUBLE_EQ(c.train.beta1, 0.9);
  EXPECT_DOUBLE_EQ(c.train.beta2, 0.999);
  EXPECT_EQ(c.train.patience, 12);
}

// Valid keys that do not do what they seem to together are said in words.
TEST(Config, MinEpochsAboveMaxEpochsIsANote) {
  EXPECT_TRUE(RunConfig::parse("[train]\nmin_epochs = 5\nmax_epochs = 5\n").notes().empty());
  const auto notes = RunConfig::parse("[train]\nmin_epochs = 50\nmax_epochs = 3\n").notes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "train.min_epochs = 50 is more than train.max_epochs = 3: every run trains 3 epochs, and early "
                      "stopping (train.patience) never starts");
}

TEST(Config, OverridesReachEveryKeyIncludingEachLayer) {
  auto c = RunConfig::parse("[model]\npreset = \"agender-clstm\"\n",
                            {"train.lr=0.001", "data.task=age3", "model.front_end.*.reduce=mean",
                             "model.front_end.0.source=hidden", "train.betas=[0.8, 0.99]"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.001);
  EXPECT_EQ(c.data.task, "age3");
  EXPECT_EQ(c.model.front_end[0].reduce(), crnn::nn::WindowReduce::mean);
  EXPECT_EQ(c.model.front_end[0].source(), crnn::nn::FeatureSource::hidden);
  EXPECT_DOUBLE_EQ(c.train.beta1, 0.8);
}

TEST(Config, DumpedConfigReadsBackToTheSameConfig) {
  for (auto& preset : crnn::nn::SequenceClassifierOptions::preset_names()) {
    auto a = RunConfig::for_preset(preset);
    auto b = RunConfig::parse(a.to_toml());
    EXPECT_EQ(a.to_toml(), b.to_toml()) << preset;
  }
  // Explicit layers in the dump win over the recorded preset name.
  auto c = RunConfig::parse(RunConfig::parse("[model]\npreset = \"emotion-clstm\"\n",
                                             {"model.front_end.*.reduce=max"}).to_toml());
  EXPECT_EQ(c.model.front_end[1].reduce(), crnn::nn::WindowReduce::max);
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_NE(error_of("[train]\nlrr = 0.1\n").find("train.lrr: unknown key"), std::string::npos);
  EXPECT_NE(error_of("[train]\nlr = \"fast\"\n").find("train.lr: expected a number"), std::string::npos);
  EXPECT_NE(error_of("[train]\nlr = -1.0\n").find("train.lr: must be finite and > 0"), std::string::npos);
  EXPECT_NE(error_of("", {"train.lr=inf"}).find("train.lr: must be finite and > 0"), std::string::npos);
  // An error on a key a --set assigned names the --set, not the file.
  EXPECT_NE(error_of("[train]\nlr = 0.1\n", {"train.lr=abc"}).find("--set train.lr=abc (on test.toml): train.lr: expected a number"),
            std::string::npos);
  EXPECT_NE(error_of("[model]\npreset = \"emotion-clstm\"\n", {"model.front_end.*.reduce=median"})
                .find("--set model.front_end.*.reduce=median (on test.toml): model.front_end.0.reduce"),
            std::string::npos);
  // A misspelt section that only a --set created is the --set's error, not the file's.
  EXPECT_NE(error_of("[train]\nlr = 0.1\n", {"trian.max_epochs=1"}).find("--set trian.max_epochs=1 (on test.toml): trian: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of("", {" train.lrr = 1"}).find("--set  train.lrr = 1 (on test.toml): train.lrr: unknown key"),
            std::string::npos);
  // A key set twice: the last --set is the one in effect, and the one blamed.
  EXPECT_NE(error_of("", {"train.lr=0.1", "train.lr=abc"}).find("--set train.lr=abc (on test.toml)"), std::string::npos);
  EXPECT_EQ(error_of("", {"train.lr=abc", "train.lr=0.1"}), "");
  EXPECT_EQ(error_of("[train]\nlr = \"x\"\n", {"train.seed=3"}).rfind("test.toml: train.lr: expected a number", 0), 0u);
  EXPECT_NE(error_of("", {"train.clip_norm=nan"}).find("train.clip_norm: must be finite"), std::string::npos);
  EXPECT_NE(error_of("", {"model.recurrent_size=100000000000"}).find("recurrent_size must be in 1..65536"),
            std::string::npos);
  // A layer index is a layer's number: "01", a huge number or a missing layer is an error, not ignored.
  for (const char* index : {"01", "00", "2", "99999999999999999999999"})
    EXPECT_NE(error_of("[model]\npreset = \"emotion-clstm\"\n", {std::string("model.front_end.") + index + ".pool=2"})
                  .find(std::string("no front-end layer '") + index + "' (have 2: 0..1 or *)"),
              std::string::npos)
        << index;
  // TOML types are strict: an integer is not a bool, a number is not a string.
  EXPECT_NE(error_of("[model]\nbidirectional = 1\n").find("model.bidirectional: expected true or false"),
            std::string::npos);
  EXPECT_NE(error_of("[data]\ntask = 5\n").find("data.task: expected a string"), std::string::npos);
  EXPECT_NE(error_of("[train]\nbetas = [true, 0.9]\n").find("train.betas: expected two numbers"), std::string::npos);
  EXPECT_NE(error_of("[train]\nbetas = [0.1, 0.001]\n").find("decay rates"), std::string::npos);
  EXPECT_NE(error_of("[model]\npreset = \"emotion-gru\"\n").find("model.preset"), std::string::npos);
  EXPECT_NE(error_of("[model]\n[[model.front_end]]\ntype = \"rnn\"\nsource = \"cell\"\n").find("source=cell needs an LSTM kind"), std::string::npos);
  EXPECT_NE(error_of("[model]\n[[model.front_end]]\ntype = \"lstm\"\nwindow = 0\n").find("window (r1) must be in 1.."), std::string::npos);
  EXPECT_NE(error_of("[model]\n[[model.front_end]]\ntype = \"lstm\"\nreduce = \"median\"\n").find("model.front_end.0.reduce"), std::string::npos);
  EXPECT_NE(error_of("[train\nlr = 1\n").find("malformed TOML"), std::string::npos);
  EXPECT_NE(error_of("", {"train.selection_metric=f1"}).find("train.selection_metric"), std::string::npos);
  EXPECT_NE(error_of("", {"bogus"}).find("expected section.key=value"), std::string::npos);
  EXPECT_NE(error_of("[data]\nfolds = 2\n").find("data.folds"), std::string::npos);
  EXPECT_NE(error_of("[train]\nclip_norm = -1.0\n").find("train.clip_norm"), std::string::npos);
  EXPECT_NE(error_of("[train]\nmin_epochs = -1\n").find("train.min_epochs: must be >= 0"), std::string::npos);
  EXPECT_NE(error_of("[train]\nprecision = \"fp16\"\n").find("train.precision: must be \"fp32\" or \"bf16\""),
            std::string::npos);
}

// A key added after the first experiment cells were named (train.min_epochs)
// is part of a cell's identity only when set: at its default the identity text
// is the one those cells were named by, so adding a key never re-keys a run.
// The dump shows every key and round-trips.
TEST(Config, KeysAddedLaterEnterTheIdentityOnlyWhenSet) {
  auto plain = RunConfig::parse("");
  EXPECT_EQ(plain.train.min_epochs, 0);
  EXPECT_NE(plain.to_toml().find("min_epochs = 0"), std::string::npos);
  EXPECT_EQ(plain.identity_toml().find("min_epochs"), std::string::npos);
  auto set = RunConfig::parse("[train]\nmin_epochs = 30\n");
  EXPECT_EQ(set.train.min_epochs, 30);
  EXPECT_NE(set.identity_toml().find("min_epochs = 30"), std::string::npos);
  EXPECT_EQ(RunConfig::parse(set.to_toml()).train.min_epochs, 30);
  // data.batches_per_bucket: runs before it existed used 8; the default is now 1.
  EXPECT_EQ(plain.data.batches_per_bucket, 1);
  EXPECT_NE(plain.identity_toml().find("batches_per_bucket = 1"), std::string::npos);
  auto legacy = RunConfig::parse("[data]\nbatches_per_bucket = 8\n");
  EXPECT_EQ(legacy.identity_toml().find("batches_per_bucket"), std::string::npos);
  EXPECT_NE(legacy.to_toml().find("batches_per_bucket = 8"), std::string::npos);
  // train.precision: every run before it existed was fp32; bf16 is a new cell.
  EXPECT_EQ(plain.train.precision, "fp32");
  EXPECT_EQ(plain.identity_toml().find("precision"), std::string::npos);
  auto bf16 = RunConfig::parse("[train]\nprecision = \"bf16\"\n");
  EXPECT_NE(bf16.identity_toml().find("precision = 'bf16'"), std::string::npos);
  EXPECT_EQ(RunConfig::parse(bf16.to_toml()).train.precision, "bf16");
  // Every key that is part of the identity at its default is in the dump, and
  // the two texts differ exactly by the later keys at their defaults.
  for (const auto& k : crnn::train::config_keys()) {
    const std::string line = "\n" + k.name + " = ";
    if (!k.at_legacy) EXPECT_NE(plain.identity_toml().find(line), std::string::npos) << k.name;
  }
}

// The schema is declared once: every key reads, validates and dumps through
// it, and docs/training.md shows exactly its table (`crnn config keys`).
TEST(Config, DocsKeyTableIsTheSchemas) {
  const std::string docs = crnn::read_text_file(CRNN_SOURCE_DIR "/docs/training.md");
  EXPECT_NE(docs.find(crnn::train::config_keys_markdown()), std::string::npos)
      << "docs/training.md's key table is stale; regenerate it with `crnn config keys`";
  // A wrong type is an error naming the key, for every scalar key.
  for (const auto& k : crnn::train::config_keys()) {
    if (k.name == "front_end" || k.name == "betas") continue;
    const std::string text = "[" + k.section + "]\n" + k.name + " = [1, 2]\n";
    try {
      RunConfig::parse(text, {}, "x.toml");
      ADD_FAILURE() << k.name << " accepted an array";
    } catch (const crnn::train::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("x.toml: " + k.section + "." + k.name + ": expected"), std::string::npos)
          << e.what();
    }
  }
}

// Every committed run config (paper presets, Table IV variants) parses, names
// a preset's setup, round-trips through its dump and is that dump.
TEST(Config, CommittedConfigsParse) {
  int n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(CRNN_SOURCE_DIR "/configs")) {
    if (e.path().extension() != ".toml" || e.path().parent_path().filename() == "experiments") continue;
    SCOPED_TRACE(e.path().string());
    auto c = crnn::train::RunConfig::from_file(e.path().string());
    EXPECT_FALSE(c.data.task.empty());
    EXPECT_FALSE(c.model.front_end.empty() && c.model.preset.find("baseline") == std::string::npos);
    EXPECT_EQ(RunConfig::parse(c.to_toml()).to_toml(), c.to_toml());
    // The file says "fully resolved": it must be its own dump, every key shown
    // (regenerate with `crnn config check FILE`).
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, c.to_toml()) << "not fully resolved; regenerate with: crnn config check " << e.path().string();
    ++n;
  }
  EXPECT_GE(n, 20);  // 8 paper setups + 12 Table IV variants
}

// Dumps print floats in their shortest round-trip form ("0.9", not
// "0.90000000000000002"), still as TOML floats, and read back exactly; the
// identity text keeps toml++'s own form (the committed cells were named by it).
TEST(Config, DumpsShowShortestFloatsThatReadBackExactly) {
  auto c = RunConfig::parse("[train]\nlr = 0.1\nbetas = [0.9, 0.999]\nclip_norm = 1e-7\n");
  const std::string dump = c.to_toml();
  EXPECT_NE(dump.find("lr = 0.1\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("betas = [ 0.9, 0.999 ]"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("0.90000000000000002"), std::string::npos) << dump;
  const auto back = RunConfig::parse(dump);
  EXPECT_EQ(back.train.lr, 0.1);
  EXPECT_EQ(back.train.beta1, 0.9);
  EXPECT_EQ(back.train.clip_norm, 1e-7);
  EXPECT_NE(RunConfig::parse("").to_toml().find("clip_norm = 0.0\n"), std::string::npos);
  EXPECT_NE(c.identity_toml().find("0.90000000000000002"), std::string::npos);
  // Strings are left alone, digits and all.
  auto paths = RunConfig::parse("[data]\nmanifest = 'corpus 0.50.csv'\n");
  EXPECT_NE(paths.to_toml().find("manifest = 'corpus 0.50.csv'"), std::string::npos);
}

// A config whose fields were set in code gets parse()'s checks from
// validate(), naming the key: train_run calls it before writing anything
// (an invalid value used to surface only after training, reading best.pt back).
TEST(Config, ValidateChecksFieldsSetInCode) {
  auto error_in = [](const std::function<void(RunConfig&)>& edit) {
    RunConfig c = RunConfig::for_preset("emotion-clstm");
    edit(c);
    try {
      c.validate("app");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_in([](RunConfig&) {}), "");
  EXPECT_NE(error_in([](RunConfig& c) { c.data.normalization = "Speaker"; }).find("app: data.normalization"),
            std::string::npos);
  EXPECT_NE(error_in([](RunConfig& c) { c.train.selection_metric = "accuracy"; }).find("train.selection_metric"),
            std::string::npos);
  EXPECT_NE(error_in([](RunConfig& c) { c.train.batch_size = 0; }).find("train.batch_size"), std::string::npos);
  EXPECT_NE(error_in([](RunConfig& c) { c.train.max_epochs = 0; }).find("train.max_epochs"), std::string::npos);
  EXPECT_NE(error_in([](RunConfig& c) { c.train.patience = -1; }).find("train.patience"), std::string::npos);
  EXPECT_NE(error_in([](RunConfig& c) { c.train.beta1 = 1.5; }).find("train.betas: each beta must be in [0, 1)"),
            std::string::npos);
  // The paper's decay rates taken for betas (the C++ probe's 0.1 / 0.001).
  EXPECT_NE(error_in([](RunConfig& c) { c.train.beta1 = 0.1, c.train.beta2 = 0.001; }).find("train.betas"),
            std::string::npos);
}

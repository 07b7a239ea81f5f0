#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crnn/data/error.h"
#include "crnn/kernels/precision.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/trainer.h"
#include "crnn/util/file_io.h"
#include "crnn/util/file_lock.h"
#include "train/tiny_corpus.h"

using namespace crnn;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// metrics.csv without the two timing columns (epoch_seconds, frames_per_s),
/// the only ones that may differ between identical runs.
std::string deterministic_columns(const fs::path& p) {
  std::stringstream in(read(p)), out;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    for (size_t i = 0; i < 5 && i < cells.size(); ++i) out << cells[i] << ',';
    out << '\n';
  }
  return out.str();
}

int run_cli(const std::string& args, std::string* output = nullptr) {
  auto r = test::run_crnn("--threads 1 " + args);
  if (output) *output = r.out;
  return r.status;
}

/// Writes a tiny corpus and its config (`epochs` epochs) to dir/tiny.toml, trains
/// it into dir/<run> through the CLI, and returns the config's path.
std::string train_tiny_run(test::TempDir& dir, int epochs, const std::string& run) {
  auto c = test::make_tiny_corpus(dir);
  std::ofstream(dir.file("tiny.toml")) << test::tiny_config(c, epochs);
  std::string out;
  EXPECT_EQ(run_cli("train " + dir.file("tiny.toml") + " -o " + dir.file(run), &out), 0) << out;
  return dir.file("tiny.toml");
}

}  // namespace

TEST(Trainer, TinyRunWritesTheRunDirectoryAndLearns) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto cfg = train::RunConfig::parse(test::tiny_config(c, 6));
  std::stringstream log;
  train::TrainOptions options;
  options.progress = false;  // everything through `log`, nothing on stderr
  testing::internal::CaptureStderr();
  auto s = train::train_run(cfg, dir.file("run"), options, log);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(test::contains(err, "batches")) << err;
  EXPECT_TRUE(test::contains(log.str(), "epoch   6: train loss")) << log.str();
  for (auto f : {"config.toml", "metrics.csv", "best.pt", "last.pt", "summary.json", "eval_valid.json", "eval_test.json"})
    EXPECT_TRUE(fs::exists(dir.path() / "run" / f)) << f;
  EXPECT_EQ(s.epochs_run, 6);
  // The task is easy (rising vs falling first feature): far above chance (0.5).
  EXPECT_GE(s.test_ua_recall, 0.9) << log.str();
  auto j = nlohmann::json::parse(read(dir.path() / "run" / "summary.json"));
  for (auto k : {"best_epoch", "epochs_run", "val_ua_recall", "test_ua_recall", "test_wa", "wall_seconds"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_DOUBLE_EQ(j["test_ua_recall"].get<double>(), s.test_ua_recall);
  // Which features the run was trained on: the store's extractor line, read back too.
  EXPECT_EQ(j["feature_extractor"], "kaldi-fbank num_bins=4");
  EXPECT_EQ(train::read_run_summary((dir.path() / "run" / "summary.json").string()).feature_extractor,
            "kaldi-fbank num_bins=4");
  // metrics.csv: header + one row per epoch.
  auto metrics = read(dir.path() / "run" / "metrics.csv");
  EXPECT_EQ(metrics.rfind("epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n", 0), 0u);
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 7);
  // The model file is self-contained: it rebuilds and classifies.
  auto loaded = train::load_model((dir.path() / "run" / "best.pt").string());
  EXPECT_EQ(loaded.bundle.labels, (std::vector<std::string>{"down", "up"}));
  EXPECT_EQ(loaded.bundle.task, "trend");
  // The resolved config replays: it parses to the same config.
  EXPECT_EQ(train::RunConfig::from_file((dir.path() / "run" / "config.toml").string()).to_toml(), cfg.to_toml());
}

// TrainOptions::stop (Ctrl-C from Python): the run stops after the batch in
// which it was set with TrainInterrupted, keeps no half epoch, and resumes.
TEST(Trainer, AStopRequestEndsTheRunAfterABatchAndItResumes) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto cfg = train::RunConfig::parse(test::tiny_config(c, 3));
  std::stringstream log;
  std::atomic<bool> stop{true};
  train::TrainOptions options;
  options.progress = false;
  options.stop = &stop;
  try {
    train::train_run(cfg, dir.file("run"), options, log);
    ADD_FAILURE() << "no TrainInterrupted";
  } catch (const train::TrainInterrupted& e) {
    EXPECT_TRUE(test::contains(e.what(), "interrupted in epoch 1; no epoch had finished")) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "run" / "last.pt"));
  EXPECT_FALSE(fs::exists(dir.path() / "run" / "summary.json"));
  // Not stopped: the same directory trains to the end.
  stop = false;
  options.resume = true;
  EXPECT_EQ(train::train_run(cfg, dir.file("run"), options, log).epochs_run, 3);
}

// Two processes training into one run directory (a resume of a run still
// going, the same -o twice) would mix two runs' files: the second is refused
// while the first holds the directory's lock (flock conflicts between open
// files even within one process, so a holder here stands for the other process).
TEST(Trainer, ARunDirectoryInUseIsRefusedAndLeftAsItIs) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto cfg = train::RunConfig::parse(test::tiny_config(c, 2));
  std::stringstream log;
  train::TrainOptions options;
  options.progress = false;
  std::atomic<bool> stop{false};
  options.stop = &stop;
  const std::string run = dir.file("run");
  cfg.train.max_epochs = 1;
  train::train_run(cfg, run, options, log);  // one epoch: last.pt and summary.json
  fs::remove(fs::path(run) / "summary.json");  // as if stopped after epoch 1
  const std::string config_before = crnn::read_text_file(run + "/config.toml");
  cfg.train.max_epochs = 2;
  options.resume = true;
  {
    const auto held = FileLock::try_directory(run);
    ASSERT_TRUE(held);
    const std::string why = test::error_of([&] { train::train_run(cfg, run, options, log); });
    EXPECT_TRUE(test::contains(why, run + ": another process is training into this run directory")) << why;
    EXPECT_TRUE(test::contains(why, "then resume the run")) << why;
    EXPECT_EQ(crnn::read_text_file(run + "/config.toml"), config_before);
    EXPECT_FALSE(fs::exists(fs::path(run) / "summary.json"));
  }
  // Released: the resume goes on.
  EXPECT_EQ(train::train_run(cfg, run, options, log).epochs_run, 2);
  // A fresh run into an (empty) directory another process holds.
  fs::create_directories(dir.path() / "fresh");
  options.resume = false;
  const auto held = FileLock::try_directory(dir.file("fresh"));
  const std::string why = test::error_of([&] { train::train_run(cfg, dir.file("fresh"), options, log); });
  EXPECT_TRUE(test::contains(why, "wait for it to end or stop it")) << why;
  EXPECT_FALSE(test::contains(why, "resume")) << why;  // nothing to resume yet
  EXPECT_TRUE(fs::is_empty(dir.path() / "fresh"));
}

TEST(Trainer, SameConfigSeedAndThreadsGiveIdenticalMetrics) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto cfg = train::RunConfig::parse(test::tiny_config(c, 3));
  std::stringstream log;
  train::train_run(cfg, dir.file("a"), {}, log);
  train::train_run(cfg, dir.file("b"), {}, log);
  EXPECT_EQ(deterministic_columns(dir.path() / "a" / "metrics.csv"),
            deterministic_columns(dir.path() / "b" / "metrics.csv"));
  auto other = cfg;
  other.train.seed = 4;
  train::train_run(other, dir.file("c"), {}, log);
  EXPECT_NE(deterministic_columns(dir.path() / "a" / "metrics.csv"),
            deterministic_columns(dir.path() / "c" / "metrics.csv"));
}

// train.precision = "bf16": the run learns as well, repeats bit for bit, is
// not the fp32 run, and predicts in bf16 from the CLI; where bf16 is
// unavailable the run is refused with the reason before anything is written.
TEST(Trainer, Bf16RunLearnsAndIsDeterministic) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    ::setenv("CRNN_DISABLE_BF16", "1", 1);
    std::stringstream log;
    try {
      train::train_run(train::RunConfig::parse(test::tiny_config(c, 1), {"train.precision=bf16"}), dir.file("off"),
                       {}, log);
      ADD_FAILURE() << "bf16 accepted while unavailable";
    } catch (const train::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("train.precision = \"bf16\": bf16 is switched off"), std::string::npos)
          << e.what();
    }
    ::unsetenv("CRNN_DISABLE_BF16");
    EXPECT_FALSE(fs::exists(dir.path() / "off"));
  }
  if (!crnn::kernels::bf16_available()) GTEST_SKIP() << crnn::kernels::bf16_unavailable_reason();
  auto cfg = train::RunConfig::parse(test::tiny_config(c, 6), {"train.precision=bf16"});
  std::stringstream log;
  auto s = train::train_run(cfg, dir.file("a"), {}, log);
  EXPECT_GE(s.test_ua_recall, 0.9) << log.str();
  train::train_run(cfg, dir.file("b"), {}, log);
  EXPECT_EQ(deterministic_columns(dir.path() / "a" / "metrics.csv"),
            deterministic_columns(dir.path() / "b" / "metrics.csv"));
  auto fp32 = cfg;
  fp32.train.precision = "fp32";
  train::train_run(fp32, dir.file("c"), {}, log);
  EXPECT_NE(deterministic_columns(dir.path() / "a" / "metrics.csv"),
            deterministic_columns(dir.path() / "c" / "metrics.csv"));
  std::string out;
  EXPECT_EQ(run_cli("eval " + dir.file("a") + " --precision bf16", &out), 0) << out;
  EXPECT_NE(out.find("UA"), std::string::npos) << out;
}

// A run killed mid-epoch and resumed ends exactly like an uninterrupted one.
TEST(Trainer, ResumeAfterACrashMidEpochGivesTheSameResult) {
  test::TempDir dir;
  train_tiny_run(dir, 4, "full");
  std::string out;
  // 48 balanced training utterances / batch 8 = 6 batches per epoch: crash in epoch 3.
  EXPECT_EQ(run_cli("train " + dir.file("tiny.toml") + " -o " + dir.file("cut") + " --crash-after-batches 15", &out), 137)
      << out;
  EXPECT_FALSE(fs::exists(dir.path() / "cut" / "summary.json"));
  ASSERT_EQ(run_cli("train --resume " + dir.file("cut"), &out), 0) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;
  EXPECT_EQ(deterministic_columns(dir.path() / "full" / "metrics.csv"),
            deterministic_columns(dir.path() / "cut" / "metrics.csv"));
  auto a = nlohmann::json::parse(read(dir.path() / "full" / "summary.json"));
  auto b = nlohmann::json::parse(read(dir.path() / "cut" / "summary.json"));
  EXPECT_EQ(a["test_ua_recall"], b["test_ua_recall"]);
  EXPECT_EQ(a["best_epoch"], b["best_epoch"]);
}

// The model file records who was in which split: resuming with speakers moved
// between splits is refused (naming the moves), and evaluating a split that
// holds training speakers warns that the score is not speaker-independent.
TEST(Trainer, ASplitChangedSinceTrainingIsRefusedOnResumeAndFlaggedOnEval) {
  test::TempDir dir;
  train_tiny_run(dir, 2, "run");
  {
    // spk0 (train) and spk5 (test) trade places.
    std::ifstream in(dir.file("tiny.csv"));
    std::ofstream swapped(dir.file("swapped.csv"));
    for (std::string line; std::getline(in, line);) {
      if (line.find(",spk0,") != std::string::npos) line.replace(line.rfind(",train"), 6, ",test");
      else if (line.find(",spk5,") != std::string::npos) line.replace(line.rfind(",test"), 5, ",train");
      swapped << line << "\n";
    }
  }
  const auto metrics_before = read(dir.path() / "run" / "metrics.csv");
  std::string out;
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set data.manifest=" + dir.file("swapped.csv") +
                        " --set train.max_epochs=3",
                    &out),
            2)
      << out;
  EXPECT_TRUE(test::contains(out, "swapped.csv: the split is not the one")) << out;
  EXPECT_TRUE(test::contains(out, "speaker 'spk0': 12 utterance(s) train → test")) << out;
  EXPECT_TRUE(test::contains(out, "speaker 'spk5': 12 utterance(s) test → train")) << out;
  EXPECT_EQ(read(dir.path() / "run" / "metrics.csv"), metrics_before);
  // Evaluating: the test split of the swapped manifest is spk0's, a training speaker.
  EXPECT_EQ(run_cli("eval " + dir.file("run") + " --manifest " + dir.file("swapped.csv"), &out), 0) << out;
  EXPECT_TRUE(test::contains(out, "crnn eval: warning: 12 of the 12 test utterances were in the training split of "))
      << out;
  EXPECT_TRUE(test::contains(out, "(speakers spk0): this is not a speaker-independent score")) << out;
  EXPECT_EQ(run_cli("predict " + dir.file("run") + " --manifest " + dir.file("swapped.csv") + " --split test", &out), 3)
      << out;  // 3: the tiny corpus's audio files do not exist; the warning comes first
  EXPECT_TRUE(test::contains(out, "crnn predict: warning: 12 of the 12 test utterances")) << out;
  // The run's own manifest: no warning, and the unchanged split resumes.
  EXPECT_EQ(run_cli("eval " + dir.file("run"), &out), 0) << out;
  EXPECT_FALSE(test::contains(out, "warning")) << out;
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set train.max_epochs=3", &out), 0) << out;
}

// A resume that cannot work is refused before anything in the run directory changes.
TEST(Trainer, RejectedResumeLeavesTheRunDirectoryIntact) {
  test::TempDir dir;
  train_tiny_run(dir, 2, "run");
  std::string out;
  const auto config_before = read(dir.path() / "run" / "config.toml");
  const auto metrics_before = read(dir.path() / "run" / "metrics.csv");
  // An architecture change: the weights would not fit (and must not be written into config.toml).
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set model.recurrent_size=16", &out), 2) << out;
  EXPECT_NE(out.find("cannot resume with a different model or data setup"), std::string::npos) << out;
  EXPECT_NE(out.find("recurrent_size = 16"), std::string::npos) << out;
  EXPECT_EQ(read(dir.path() / "run" / "config.toml"), config_before);
  // The data setup is fixed too; the training schedule is not.
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set data.task=other", &out), 2) << out;
  EXPECT_EQ(read(dir.path() / "run" / "config.toml"), config_before);
  // Data from elsewhere must be the data the checkpoint was trained on: features
  // of the same extractor (here: same ids and width, other options) and the same
  // classes. Both are refused naming the files, config.toml left as it was.
  fs::copy_file(dir.file("tiny.h5"), dir.file("other.h5"));
  {
    auto store = data::FeatureStore::open(dir.file("other.h5"), data::FeatureStore::Mode::Append);
    auto attrs = store.attributes();
    attrs.extractor += " window=hamming";
    store.set_attributes(attrs);
  }
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set data.features=" + dir.file("other.h5"), &out), 2)
      << out;
  EXPECT_TRUE(test::contains(out, "other.h5: features made with other options than")) << out;
  EXPECT_TRUE(test::contains(out, "window=hamming")) << out;
  EXPECT_EQ(read(dir.path() / "run" / "config.toml"), config_before);
  {
    std::string relabelled = read(dir.file("tiny.csv"));
    for (size_t at; (at = relabelled.find(",up,")) != std::string::npos;) relabelled.replace(at, 4, ",rise,");
    std::ofstream(dir.file("relabelled.csv")) << relabelled;
  }
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set data.manifest=" + dir.file("relabelled.csv"), &out),
            2)
      << out;
  EXPECT_TRUE(test::contains(out, "relabelled.csv: task 'trend' has the classes down, rise, the checkpoint")) << out;
  EXPECT_EQ(read(dir.path() / "run" / "config.toml"), config_before);
  // A metrics.csv that is not one: a data error naming the file and line, not a bare "stoll".
  std::ofstream(dir.path() / "run" / "metrics.csv") << "epoch,train_loss\nxyz,1\n";
  EXPECT_EQ(run_cli("train --resume " + dir.file("run"), &out), 2) << out;
  EXPECT_NE(out.find("metrics.csv:1: header has no \"val_loss\" column"), std::string::npos) << out;
  std::ofstream(dir.path() / "run" / "metrics.csv") << metrics_before;
  // Fewer epochs than the run has trained: nothing to resume, nothing changed.
  EXPECT_EQ(run_cli("train --resume " + dir.file("run") + " --set train.max_epochs=1", &out), 2) << out;
  EXPECT_TRUE(test::contains(out, "train.max_epochs = 1 is below the 2 epochs this run has trained: there is nothing "
                                  "to resume")) << out;
  EXPECT_EQ(read(dir.path() / "run" / "config.toml"), config_before);
  // The training schedule may change for the rest of the run, and that is said.
  ASSERT_EQ(run_cli("train --resume " + dir.file("run") + " --set train.max_epochs=3", &out), 0) << out;
  EXPECT_TRUE(test::contains(out, "resuming after epoch 2 with settings changed since (config.toml records them "
                                  "from now on): [train] max_epochs = 3")) << out;
  EXPECT_NE(read(dir.path() / "run" / "config.toml").find("max_epochs = 3"), std::string::npos);
  // Nothing to resume: no run directory, or a run without a checkpoint.
  EXPECT_EQ(run_cli("train --resume " + dir.file("nothing"), &out), 2) << out;
  EXPECT_NE(out.find("not a run directory (no config.toml)"), std::string::npos) << out;
  fs::create_directories(dir.path() / "nothing");
  fs::copy_file(dir.path() / "run" / "config.toml", dir.path() / "nothing" / "config.toml");
  // A run killed before its first checkpoint: --resume starts it, and says so.
  EXPECT_EQ(run_cli("train --resume " + dir.file("nothing") + " --set train.max_epochs=1", &out), 0) << out;
  EXPECT_NE(out.find("no checkpoint yet (stopped before the first epoch ended); starting the run from the beginning"),
            std::string::npos)
      << out;
  EXPECT_TRUE(fs::exists(dir.path() / "nothing" / "last.pt"));
  // A finished run kept without its checkpoints (results committed without *.pt):
  // nothing to resume, and neither --resume nor a new training overwrites it.
  fs::remove(dir.path() / "nothing" / "last.pt");
  const std::string summary = read(dir.path() / "nothing" / "summary.json");
  EXPECT_EQ(run_cli("train --resume " + dir.file("nothing"), &out), 2) << out;
  EXPECT_TRUE(test::contains(out, "this run has finished (summary.json) and has no last.pt to resume from")) << out;
  EXPECT_EQ(run_cli("train " + dir.file("nothing") + "/config.toml -o " + dir.file("nothing"), &out), 2) << out;
  EXPECT_TRUE(test::contains(out, "already holds a run (summary.json)")) << out;
  EXPECT_EQ(read(dir.path() / "nothing" / "summary.json"), summary);
}

// A validation or test split without some class trains, with a warning: UA recall
// averages the classes present, so a one-class predictor can score 100 % there.
TEST(Trainer, WarnsWhenASplitLacksAClass) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    std::ofstream m(dir.file("noup.csv"));
    std::stringstream in(read(c.manifest));
    for (std::string line; std::getline(in, line);)  // drop the validation speaker's "up" rows
      if (!(line.rfind("s4_c0_", 0) == 0)) m << line << "\n";
  }
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1), {"data.manifest=" + dir.file("noup.csv")}),
                   dir.file("run"), {}, log);
  EXPECT_NE(log.str().find("data: warning: the validation split has no utterances of class(es) up; its UA recall "
                           "averages only the classes present, so model selection and early stopping are weak"),
            std::string::npos)
      << log.str();
  EXPECT_EQ(log.str().find("the test split has no"), std::string::npos) << log.str();
}

// A class with one training utterance trains (it may be real) but is named
// with its row: most often it is a typo of another label.
TEST(Trainer, WarnsAboutAClassWithOneTrainingUtterance) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    std::string text = read(c.manifest);
    const auto at = text.find("s0_c0_0,audio/s0_c0_0.wav,spk0,up,");
    ASSERT_NE(at, std::string::npos);
    text.replace(text.find(",up,", at), 4, ",pu,");
    std::ofstream(dir.file("typo.csv")) << text;
  }
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1), {"data.manifest=" + dir.file("typo.csv")}),
                   dir.file("run"), {}, log);
  EXPECT_TRUE(test::contains(log.str(), "data: warning: class 'pu' of task 'trend' has only 1 training utterance(s) (" +
                                            dir.file("typo.csv") + ":2: utterance 's0_c0_0'); class balancing copies "
                                                                   "them up to the largest class's 24. A typo of "
                                                                   "another label?"))
      << log.str();
  // The tiny corpus's own classes (24 training utterances each) give no such warning.
  std::stringstream plain;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1)), dir.file("run2"), {}, plain);
  EXPECT_FALSE(test::contains(plain.str(), "training utterance(s)")) << plain.str();
}

// Labels differing only in case or spaces stay separate classes (taken verbatim)
// but are warned about.
TEST(Trainer, WarnsAboutLabelsThatDifferOnlyInCaseOrSpaces) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    std::ofstream m(dir.file("case.csv"));
    std::stringstream in(read(c.manifest));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("s0_c0_", 0) == 0) line.replace(line.find(",up,"), 4, ",Up ,");  // speaker 0 typed it so
      m << line << "\n";
    }
  }
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1), {"data.manifest=" + dir.file("case.csv")}),
                   dir.file("run"), {}, log);
  EXPECT_NE(log.str().find("data: warning: classes 'Up ', 'up' of task 'trend' differ only in case, spaces or accents"),
            std::string::npos)
      << log.str();
}

TEST(Trainer, BadInputsGiveClearErrors) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::stringstream log;
  auto expect_error = [&](const std::string& text, const std::vector<std::string>& overrides, const std::string& fragment,
                          const std::string& run) {
    const bool existed = fs::exists(dir.file(run));
    try {
      train::train_run(train::RunConfig::parse(text, overrides), dir.file(run), {}, log);
      ADD_FAILURE() << "expected an error containing " << fragment;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    // A run refused for its config or data leaves no directory behind.
    if (!existed) EXPECT_FALSE(fs::exists(dir.file(run))) << run << " was created";
  };
  const auto cfg = test::tiny_config(c, 1);
  expect_error(cfg, {"data.task=emotion"}, "no label column 'emotion'", "r1");
  // Every row a test row: no training utterances to learn from or to carve validation speakers from.
  {
    std::ofstream m(dir.file("alltest.csv"));
    m << "id,path,speaker,trend,split\n";
    std::ifstream in(c.manifest);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      auto pos = line.rfind(',');
      m << line.substr(0, pos) << ",test\n";
    }
  }
  expect_error(cfg, {"data.manifest=" + dir.file("alltest.csv")}, "no training utterances", "r2");
  // Features that do not cover the manifest.
  {
    std::ofstream m(dir.file("extra.csv"));
    m << read(c.manifest) << "ghost,audio/ghost.wav,spk0,up,train\n";
  }
  expect_error(cfg, {"data.manifest=" + dir.file("extra.csv")}, "does not cover the manifest", "r3");
  expect_error(cfg, {"data.features=" + dir.file("missing.h5")}, "data.features: " + dir.file("missing.h5") + ": file not found",
               "r4");
  expect_error(cfg, {"data.manifest=no/such.csv"},
               "data.manifest: no/such.csv: file not found (a relative path is taken from the working directory, " +
                   fs::current_path().string() + ")",
               "r4b");
  // A model larger than any memory: the key that sizes it, before LibTorch's allocator.
  // (recurrent_size 65536: 4·65536² recurrent weights alone are 1.7e10 parameters.)
  expect_error(cfg, {"model.recurrent_size=65536"}, "model.recurrent_size: the model would have 1.72e+10 parameters",
               "r5");
  // A model whose weights fit (4·4096² recurrent weights: 1 GB with Adam) but
  // whose training step does not: a CLSTM window of 10⁶ frames is 10⁶ scan
  // steps for every sequence, each with 6·4096 gate and state values (~0.8 TB).
  expect_error(cfg, {"model.front_end.0.window=1000000", "model.front_end.0.features=4096"},
               "model.front_end.0: one training step would need about", "r6");
  // No split at all and no folds: 6-fold speaker-group cross-validation, said so.
  {
    test::TempDir d2;
    auto c2 = test::make_tiny_corpus(d2, 6, 2, /*with_split=*/false);
    std::stringstream notice;
    const auto s = train::train_run(train::RunConfig::parse(test::tiny_config(c2, 1)), d2.file("r5"), {}, notice);
    EXPECT_TRUE(test::contains(notice.str(), "the manifest has no split column")) << notice.str();
    EXPECT_EQ(s.test_speakers, 1);
    EXPECT_EQ(s.valid_speakers, 1);
  }
  // A class seen only outside training cannot be learned.
  {
    std::ofstream m(dir.file("testonly.csv"));
    m << read(c.manifest) << "extra,audio/extra.wav,spk5,flat,test\n";
    auto store = data::FeatureStore::open(c.features, data::FeatureStore::Mode::Append);
    store.write("extra", torch::zeros({30, 4}));
    store.flush();
  }
  expect_error(cfg, {"data.manifest=" + dir.file("testonly.csv")},
               "class(es) flat of task 'trend' have no training utterances", "r7");
  // The run directory is a directory.
  std::ofstream(dir.file("plain_file")) << "x";
  expect_error(cfg, {}, "plain_file: exists and is not a directory", "plain_file");
  // An existing run is not overwritten.
  train::train_run(train::RunConfig::parse(cfg), dir.file("r6"), {}, log);
  expect_error(cfg, {}, "already holds a run", "r6");
}

TEST(Trainer, SchedulerStopsAfterPatienceEpochsWithoutImprovement) {
  train::Scheduler s("ua_recall", 3);
  EXPECT_TRUE(s.update(1, 0.5));
  EXPECT_FALSE(s.update(2, 0.5));  // equal is no improvement
  EXPECT_TRUE(s.update(3, 0.6));
  EXPECT_FALSE(s.update(4, 0.55));
  EXPECT_FALSE(s.update(5, 0.59));
  EXPECT_FALSE(s.should_stop());
  EXPECT_FALSE(s.update(6, 0.1));
  EXPECT_TRUE(s.should_stop());
  EXPECT_EQ(s.best_epoch, 3);
  train::Scheduler loss("loss", 2);
  EXPECT_GT(loss.score(0, 0, 0.1), loss.score(0, 0, 0.2));  // lower loss is better
}

TEST(Trainer, SchedulerWithMinEpochsStopsNoEarlierThanThatEpoch) {
  train::Scheduler s("ua_recall", 2, 5);
  EXPECT_TRUE(s.update(1, 0.5));
  EXPECT_FALSE(s.update(2, 0.4));
  EXPECT_FALSE(s.update(3, 0.4));
  EXPECT_FALSE(s.should_stop());  // patience used up, but epoch 3 < 5
  EXPECT_FALSE(s.update(4, 0.4));
  EXPECT_FALSE(s.should_stop());
  EXPECT_FALSE(s.update(5, 0.4));
  EXPECT_TRUE(s.should_stop());
  EXPECT_EQ(s.best_epoch, 1);
  // An improvement after the patience ran out (but before min_epochs) resets it.
  train::Scheduler t("ua_recall", 2, 5);
  t.update(1, 0.5), t.update(2, 0.4), t.update(3, 0.4), t.update(4, 0.6), t.update(5, 0.5);
  EXPECT_FALSE(t.should_stop());
  t.update(6, 0.5);
  EXPECT_TRUE(t.should_stop());
  EXPECT_EQ(t.best_epoch, 4);
}

// train.min_epochs holds early stopping off; a run that early stopping ended
// can be continued from its last checkpoint under a larger min_epochs, and
// that equals training afresh with it (how docs/results.md's speechocean762
// runs from before the option were carried over).
TEST(Trainer, MinEpochsDelaysEarlyStoppingAndExtendsAStoppedRunExactly) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::stringstream log;
  auto stopped_cfg = train::RunConfig::parse(test::tiny_config(c, 8), {"train.patience=1"});
  auto stopped = train::train_run(stopped_cfg, dir.file("stopped"), {}, log);
  ASSERT_LT(stopped.epochs_run, 6) << "the tiny task should saturate and stop early; " << log.str();
  auto long_cfg = train::RunConfig::parse(test::tiny_config(c, 8), {"train.patience=1", "train.min_epochs=6"});
  auto fresh = train::train_run(long_cfg, dir.file("fresh"), {}, log);
  EXPECT_GE(fresh.epochs_run, 6);
  // The first epochs are those of the stopped run: min_epochs changes only when to stop.
  const auto a = deterministic_columns(dir.path() / "stopped" / "metrics.csv");
  const auto b = deterministic_columns(dir.path() / "fresh" / "metrics.csv");
  EXPECT_EQ(b.substr(0, a.size()), a);
  // Continue the stopped run with min_epochs = 6.
  fs::copy(dir.path() / "stopped", dir.path() / "extended", fs::copy_options::recursive);
  fs::remove(dir.path() / "extended" / "summary.json");
  train::TrainOptions resume;
  resume.resume = true;
  auto extended = train::train_run(long_cfg, dir.file("extended"), resume, log);
  EXPECT_EQ(extended.epochs_run, fresh.epochs_run);
  EXPECT_EQ(extended.best_epoch, fresh.best_epoch);
  EXPECT_EQ(extended.test_ua_recall, fresh.test_ua_recall);
  EXPECT_EQ(deterministic_columns(dir.path() / "extended" / "metrics.csv"), b);
  EXPECT_NE(read(dir.path() / "extended" / "config.toml").find("min_epochs = 6"), std::string::npos);
}

// The printed evaluation: UA recall over the classes present; an absent class
// shows "n/a" (not 0 %, which would not average to the printed UA).
TEST(Trainer, EvaluationTableMarksAbsentClasses) {
  train::Evaluation e;
  e.confusion = train::ConfusionMatrix(3);
  e.confusion.add(0, 0);
  e.confusion.add(0, 0);
  e.confusion.add(1, 1);
  e.confusion.add(1, 0);  // class 2 ("c") has no utterances
  e.count = 4;
  const auto table = train::evaluation_table(e, "test", {"a", "b", "c"});
  EXPECT_NE(table.find("UA recall 75.00%"), std::string::npos) << table;  // (100 + 50) / 2
  EXPECT_NE(table.find("a           100.00%"), std::string::npos) << table;
  EXPECT_NE(table.find("b            50.00%"), std::string::npos) << table;
  EXPECT_NE(table.find("c               n/a"), std::string::npos) << table;
  EXPECT_NE(table.find("(1 class(es) without utterances in this split, recall n/a, left out of UA recall: c)"), std::string::npos)
      << table;
}

// Labels that share their first six letters stay apart in the confusion header.
TEST(Trainer, EvaluationTableHeaderShowsWholeLabels) {
  train::Evaluation e;
  e.confusion = train::ConfusionMatrix(2);
  e.confusion.add(0, 0);
  e.confusion.add(1, 0);
  e.count = 2;
  const auto table = train::evaluation_table(e, "test", {"neutral", "nuetral"});
  EXPECT_TRUE(test::contains(table, " neutral nuetral\n")) << table;
  EXPECT_TRUE(test::contains(table, "100.00%        1       0\n")) << table;  // counts right-aligned under them
  // Labels too long for a column (two alike in their first 12 characters here)
  // number the columns, and each row says its number.
  const auto numbered = train::evaluation_table(e, "test", {"very angry indeed", "very angry, somewhat"});
  EXPECT_TRUE(test::contains(numbered, "      #1     #2\n")) << numbered;
  EXPECT_TRUE(test::contains(numbered, "\n#1 very angry indeed      100.00%       1      0\n")) << numbered;
  EXPECT_TRUE(test::contains(numbered, "\n#2 very angry, somewhat     0.00%       1      0\n")) << numbered;
}

// Data paths given relative to the working directory are stored absolute in the
// run's config.toml (and model file), so a later eval or replay from another
// directory reads the same data, not whatever the relative path names there.
TEST(Trainer, RunRecordsAbsoluteDataPaths) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  const std::string manifest_rel = fs::relative(c.manifest).string(), features_rel = fs::relative(c.features).string();
  ASSERT_TRUE(fs::path(manifest_rel).is_relative());
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1),
                                           {"data.manifest=" + manifest_rel, "data.features=" + features_rel}),
                   dir.file("run"), {}, log);
  const auto saved = train::RunConfig::from_file(dir.file("run/config.toml"));
  EXPECT_EQ(saved.data.manifest, fs::path(c.manifest).lexically_normal().string());
  EXPECT_EQ(saved.data.features, fs::path(c.features).lexically_normal().string());
  const auto embedded = train::RunConfig::parse(train::load_model(dir.file("run/best.pt")).bundle.config_toml);
  EXPECT_EQ(embedded.data.manifest, saved.data.manifest);
}

// A model whose class layer is zero predicts the uniform distribution at every
// step, so its averaged prediction is uniform too: the loss is ln C for every
// utterance, and every argmax ties and goes to class 0 (recall 1, 0, 0).
TEST(Trainer, EvaluateOfAUniformModelHasLossLnCAndPredictsTheFirstClass) {
  torch::manual_seed(2);
  nn::SequenceClassifier model(nn::SequenceClassifierOptions(4, 3).recurrent_size(4).dense_size(5));
  {
    torch::NoGradGuard g;
    model->classes->weight.zero_();
    model->classes->bias.zero_();
  }
  std::vector<data::Example> examples;
  const std::vector<int64_t> labels{0, 1, 2, 2, 1};
  for (size_t i = 0; i < labels.size(); ++i)
    examples.push_back({torch::randn({static_cast<int64_t>(3 + 4 * i), 4}), labels[i], fmt::format("u{}", i)});
  const auto e = train::evaluate(model, examples, 3, /*batch_size=*/2, /*keep_probabilities=*/true);
  EXPECT_EQ(e.count, 5);
  EXPECT_NEAR(e.loss, std::log(3.0), 1e-6);
  EXPECT_EQ(e.confusion.per_class_recall(), (std::vector<double>{1.0, 0.0, 0.0}));
  EXPECT_NEAR(e.confusion.ua_recall(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(e.confusion.wa(), 1.0 / 5, 1e-12);
  ASSERT_EQ(e.probabilities.size(), 5u);
  for (const auto& p : e.probabilities)
    for (float q : p) EXPECT_NEAR(q, 1.0 / 3, 1e-6);
  EXPECT_EQ(e.ids, (std::vector<std::string>{"u0", "u1", "u2", "u3", "u4"}));
}

// Class balancing (SPEC §3) on an unbalanced training set: 4 training speakers
// with 6 "up" and 2 "down" utterances each → 24 + 8 = 32, oversampled to the
// largest class: 2 × 24 = 48.
TEST(Trainer, UnbalancedTrainingSetIsOversampledToTheLargestClass) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  {
    std::ifstream in(c.manifest);
    std::ofstream out(dir.file("unbalanced.csv"));
    std::string line;
    std::getline(in, line);
    out << line << "\n";
    while (std::getline(in, line)) {
      // ids s<speaker>_c<class>_<i>: drop "down" (c1) utterances 2..5 of training speakers.
      const bool train = line.find(",train") != std::string::npos;
      const bool down = line.find("_c1_") != std::string::npos;
      const int i = line[line.find(',') - 1] - '0';
      if (train && down && i >= 2) continue;
      out << line << "\n";
    }
  }
  std::stringstream log;
  train::train_run(train::RunConfig::parse(test::tiny_config(c, 1), {"data.manifest=" + dir.file("unbalanced.csv")}),
                   dir.file("run"), {}, log);
  EXPECT_NE(log.str().find("train: 48 utterances after class balancing (32 before)"), std::string::npos) << log.str();
}

// A run whose loss stops being finite ends with an error that says so and
// names the last good checkpoint, instead of training on NaN.
TEST(Trainer, DivergedTrainingStopsWithAClearError) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  std::stringstream log;
  const std::string error = test::error_of([&] {
    train::train_run(train::RunConfig::parse(test::tiny_config(c, 3), {"train.lr=1e30"}), dir.file("run"), {}, log);
  });
  EXPECT_TRUE(test::contains(error, "training diverged: loss is")) << log.str();
  EXPECT_TRUE(test::contains(error, "try a lower train.lr"));
}

// A full disk while the checkpoints are written (CRNN_FAULT_WRITE: the 3rd
// write of last.pt fails with ENOSPC) is an error naming the file, not an
// abort; the run directory holds no temporary file, last.pt and best.pt still
// agree (the pair of the epoch before), and a resume once space is back ends
// exactly like an uninterrupted run.
TEST(Trainer, DiskFullWhileCheckpointingIsAnErrorAndResumeGivesTheSameResult) {
  test::TempDir dir;
  train_tiny_run(dir, 4, "full");
  const auto r = test::run_command("CRNN_FAULT_WRITE=last.pt:3 '" CRNN_BINARY "' --threads 1 train " +
                                   dir.file("tiny.toml") + " -o " + dir.file("cut"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(test::contains(r.out, "last.pt: write failed: No space left on device (disk full")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "; the run keeps the epochs it finished, if any: resume it once the cause is fixed (crnn "
                                    "train --resume " + dir.file("cut") + ";"))
      << r.out;
  EXPECT_FALSE(test::contains(r.out, "terminate called")) << r.out;
  for (const auto& e : fs::directory_iterator(dir.path() / "cut"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  const auto last = train::load_model((dir.path() / "cut" / "last.pt").string());
  const auto best = train::load_model((dir.path() / "cut" / "best.pt").string());
  EXPECT_EQ(last.state.epoch, 2);  // epochs 1 and 2 written; epoch 3's pair failed
  EXPECT_EQ(best.state.epoch, last.state.best_epoch);
  std::string out;
  ASSERT_EQ(run_cli("train --resume " + dir.file("cut"), &out), 0) << out;
  EXPECT_EQ(deterministic_columns(dir.path() / "full" / "metrics.csv"),
            deterministic_columns(dir.path() / "cut" / "metrics.csv"));
}

// A config built in code with an invalid value is refused before anything is
// trained or written, naming the key.
TEST(Trainer, InvalidConfigSetInCodeIsRefusedBeforeTraining) {
  test::TempDir dir;
  auto c = test::make_tiny_corpus(dir);
  auto cfg = train::RunConfig::parse(test::tiny_config(c));
  cfg.data.normalization = "Speaker";
  std::ostringstream log;
  try {
    train::train_run(cfg, dir.file("run"), {}, log);
    ADD_FAILURE() << "no error";
  } catch (const train::ConfigError& e) {
    EXPECT_TRUE(test::contains(e.what(), "data.normalization")) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
}

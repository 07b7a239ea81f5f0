// `crnn demo`: the embedded default main job. Builds a small labelled speech
// corpus with espeak-ng (synthetic speakers, calm vs excited), extracts
// features, trains a CLSTM classifier and a standard-conv classifier with the
// paper's protocol, and prints both UA recalls and where the report is.
#include <fmt/core.h>

#include <filesystem>
#include <limits>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/data/extract_features.h"
#include "crnn/data/synthetic_corpus.h"
#include "crnn/train/config.h"
#include "crnn/train/report.h"
#include "crnn/train/trainer.h"
#include "crnn/util/progress.h"

namespace {
namespace fs = std::filesystem;

struct DemoOptions {
  std::string output = "crnn-demo";
  int64_t epochs = 30;
  int64_t speakers = 8;
  int64_t utterances = 20;
  uint64_t seed = 1;
};

/// The demo's model: the paper's emotion setup (two front-end layers r1 = 5,
/// r2 = 2, pooling 2/2, the CLSTM taking c at the last step of each window,
/// LSTM → Dense(ReLU) → softmax averaged over the last 4 steps) with narrower
/// layers so that both runs fit in a few minutes on two cores.
std::string demo_config(const std::string& front, const std::string& manifest, const std::string& features,
                        const DemoOptions& o) {
  std::string layer = front == "clstm" ? "type = \"lstm\"\nsource = \"cell\"\nreduce = \"last\"\n"
                                       : "type = \"conv\"\nactivation = \"sigmoid\"\n";
  layer += "features = 32\nwindow = 5\nshift = 2\npool = 2\npool_shift = 2\n";
  return fmt::format(R"([data]
manifest = "{}"
features = "{}"
task = "arousal"

[model]
recurrent_size = 64
dense_size = 64
average_last = 4

[[model.front_end]]
{}
[[model.front_end]]
{}
[train]
lr = 0.002
batch_size = 16
max_epochs = {}
patience = 8
seed = {}
)",
                     manifest, features, layer, layer, o.epochs, o.seed);
}

int run_demo(const DemoOptions& o) {
  using namespace crnn;
  const fs::path dir = fs::absolute(o.output);
  fs::create_directories(dir);
  fmt::print("crnn demo: working in {}\n", dir.string());

  // 1. Corpus (cached: regenerated only if the options change).
  data::SyntheticCorpusOptions co;
  co.out_dir = (dir / "corpus").string();
  co.speakers = o.speakers;
  co.utterances_per_class = o.utterances;
  co.seed = o.seed;
  fmt::print("[1/4] synthetic corpus: {} speakers × 2 classes × {} utterances (espeak-ng)\n", o.speakers,
             o.utterances);
  std::unique_ptr<Progress> progress;
  auto manifest = data::make_synthetic_corpus(co, [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<Progress>("corpus", total, "files", 5.0);
    progress->advance(1);
    if (done == total) progress->finish();
  });
  const std::string manifest_path = (dir / "corpus" / "manifest.csv").string();

  // 2. Features (resumable; a re-run finds them all present).
  fmt::print("[2/4] log mel filterbank features (26 bins, 25 ms / 10 ms)\n");
  const std::string features_path = (dir / "features.h5").string();
  auto fr = data::extract_features(manifest_path, features_path);
  if (!fr.failed.empty()) {
    for (auto& f : fr.failed) fmt::print(stderr, "  failed: {}\n", f);
    return cli::kExitPartial;
  }
  fmt::print("  {} utterances ({} extracted now, {} cached)\n", fr.total, fr.extracted, fr.present);

  // 3. Two models, trained anew each time.
  const fs::path runs = dir / "runs";
  std::map<std::string, train::RunSummary> results;
  int step = 3;
  for (const std::string front : {"clstm", "conv"}) {
    fmt::print("[{}/4] training the {} classifier (up to {} epochs, early stopping)\n", step++,
               front == "clstm" ? "CLSTM" : "standard convolutional", o.epochs);
    fs::remove_all(runs / front);
    auto cfg = train::RunConfig::parse(demo_config(front, manifest_path, features_path, o), {}, "demo");
    results[front] = train::train_run(cfg, (runs / front).string(), {}, std::cerr);
  }
  train::write_report(runs.string(), (dir / "report").string());

  fmt::print("\ncrnn demo: task 'arousal' (calm vs excited), speaker-independent test set\n");
  for (const std::string front : {"clstm", "conv"}) {
    const auto& s = results[front];
    fmt::print("  {:<24} test UA recall {:6.2f}%  (WA {:6.2f}%, best epoch {} of {}, {:.0f} s)\n",
               front == "clstm" ? "CLSTM" : "standard conv layer", 100 * s.test_ua_recall, 100 * s.test_wa,
               s.best_epoch, s.epochs_run, s.wall_seconds);
  }
  fmt::print("  chance: 50.00%\n");
  fmt::print("report:  {}\n", (dir / "report" / "index.html").string());
  fmt::print("models:  {}  (try: crnn predict {} {})\n", (runs / "clstm" / "best.pt").string(),
             (runs / "clstm" / "best.pt").string(), manifest[0].path);
  return 0;
}

crnn::cli::Registrar reg{
    "demo",
    "Run the embedded demo: synthetic espeak-ng corpus → features → CLSTM and conv classifiers",
    [](CLI::App& app) {
      auto o = std::make_shared<DemoOptions>();
      app.add_option("-o,--output", o->output, "Working directory")->capture_default_str();
      app.add_option("--epochs", o->epochs, "Maximum epochs per model")->check(crnn::cli::IntRange(1, 100000))->capture_default_str();
      app.add_option("--speakers", o->speakers, "Synthetic speakers (>= 3)")->check(CLI::Range(3, 12))->capture_default_str();
      app.add_option("--utterances", o->utterances, "Utterances per speaker and class")
          ->check(crnn::cli::IntRange(1, 10000))
          ->capture_default_str();
      app.add_option("--seed", o->seed, "Seed of corpus and training")
          ->capture_default_str()
          // it lands in a TOML config, whose integers are signed 64-bit
          ->check(crnn::cli::IntRange(0, std::numeric_limits<int64_t>::max()));
      return [o] { return run_demo(*o); };
    },
    10};

}  // namespace

// Calibration of the demo corpus's difficulty (docs/demo.md): generates a
// corpus, then trains a logistic regression on the per-utterance mean and std
// of speaker-normalized 26 log-mel features, leave-one-speaker-out. At
// separation 1 the classes must be learnable well above chance but not
// trivially; at separation 0 (the same speakers and sentences, no class
// shifts) at chance, so the class signal is the designed prosody and nothing
// else (sentences, voices).
//
// By default on a reduced corpus (6 speakers × 6 utterances per class, seed 0,
// ~6 s). The documented calibration (the default corpus, seeds 0 and 1 and
// separation 0, tighter bounds, 15–40 s) — re-run it after changing the class
// shifts or jitter and update docs/demo.md with the numbers it prints:
//   CRNN_CALIBRATION=full ./build/crnn_tests --gtest_filter='SyntheticCorpusCalibration*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/synthetic_corpus.h"
#include "support/test_support.h"

using namespace crnn::data;

struct Calibration {
  double accuracy;                   // leave-one-speaker-out, pooled log-mel logistic regression
  double calm_seconds, excited_seconds;  // mean durations
};

static Calibration evaluate(double separation, uint64_t seed, bool full) {
  crnn::test::TempDir dir;
  SyntheticCorpusOptions o;
  if (!full) {
    o.speakers = 6;
    o.utterances_per_class = 6;
  }
  o.out_dir = dir.str();
  o.separation = separation;
  o.seed = seed;
  auto t0 = std::chrono::steady_clock::now();
  Manifest m = make_synthetic_corpus(o);
  double gen = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();
  make_synthetic_corpus(o);
  double skip = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::map<std::string, std::vector<torch::Tensor>> feats;
  std::map<std::string, std::vector<int64_t>> labels;
  double total_dur = 0;
  std::vector<double> dur[2];
  for (const auto& u : m.utterances()) {
    auto w = crnn::audio::read_audio(u.path);
    total_dur += w.size(0) / 16000.0;
    feats[u.speaker].push_back(crnn::audio::compute_fbank(w));
    int64_t y = u.label("arousal") == "excited";
    labels[u.speaker].push_back(y);
    dur[y].push_back(w.size(0) / 16000.0);
  }
  // Per-speaker normalization (as the pipeline does), then pooled mean + std.
  std::vector<std::string> spk;
  std::map<std::string, torch::Tensor> X;
  for (auto& [s, fs] : feats) {
    spk.push_back(s);
    auto all = torch::cat(fs, 0);
    auto mu = all.mean(0), sd = all.std(0) + 1e-5;
    std::vector<torch::Tensor> rows;
    for (auto& f : fs) {
      auto z = (f - mu) / sd;
      rows.push_back(torch::cat({z.mean(0), z.std(0)}));
    }
    X[s] = torch::stack(rows);
  }
  int correct = 0, n = 0;
  for (auto& test : spk) {
    std::vector<torch::Tensor> xs;
    std::vector<int64_t> ys;
    for (auto& s : spk)
      if (s != test) {
        xs.push_back(X[s]);
        ys.insert(ys.end(), labels[s].begin(), labels[s].end());
      }
    auto x = torch::cat(xs);
    auto y = torch::tensor(ys).to(torch::kFloat);
    auto mu = x.mean(0), sd = x.std(0) + 1e-5;
    x = (x - mu) / sd;
    auto w = torch::zeros({x.size(1)}, torch::requires_grad());
    auto b = torch::zeros({1}, torch::requires_grad());
    torch::optim::Adam opt({w, b}, 0.05);
    for (int it = 0; it < 300; ++it) {
      opt.zero_grad();
      auto loss = torch::binary_cross_entropy_with_logits(x.matmul(w) + b, y) + 1e-2 * w.pow(2).sum();
      loss.backward();
      opt.step();
    }
    auto xt = (X[test] - mu) / sd;
    auto pred = (xt.matmul(w) + b > 0).to(torch::kLong);
    auto yt = torch::tensor(labels[test]);
    correct += (pred == yt).sum().item<int64_t>();
    n += yt.size(0);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / v.size();
  };
  std::printf("separation %.2f seed %llu: %zu files, %.1f s audio, generated in %.2f s, skip %.3f s; "
              "mean dur calm %.2f excited %.2f; LOSO pooled-logreg accuracy %.1f%%\n",
              separation, (unsigned long long)seed, m.size(), total_dur, gen, skip, mean(dur[0]), mean(dur[1]),
              100.0 * correct / n);
  return {static_cast<double>(correct) / n, mean(dur[0]), mean(dur[1])};
}

TEST(SyntheticCorpusCalibration, LearnableWellAboveChanceAndAtChanceWithoutSeparation) {
  if (!crnn::test::espeak_available()) GTEST_SKIP() << "espeak-ng not installed (scripts/setup installs it)";
  const char* mode = std::getenv("CRNN_CALIBRATION");
  const bool full = mode != nullptr && std::string(mode) == "full";
  std::vector<Calibration> separated{evaluate(1.0, 0, full)};
  if (full) separated.push_back(evaluate(1.0, 1, full));
  const Calibration chance = evaluate(0.0, 0, full);
  // docs/demo.md's design: at separation 1 each cue alone gives ≈ 76 % and all
  // four ≈ 93 % for an ideal linear rule, so a pooled logistic regression lands
  // between. The lower bounds and the chance band are 2–3 standard errors of an
  // accuracy over the corpus's decisions (192 full, 72 reduced) from the
  // documented ≈ 82 % and from 50 %. (Deterministic for one espeak-ng version.)
  for (const auto& c : separated) {
    EXPECT_GE(c.accuracy, full ? 0.75 : 0.70);
    EXPECT_LE(c.accuracy, full ? 0.95 : 0.97);
    EXPECT_LT(c.excited_seconds, c.calm_seconds);  // excited is faster
  }
  EXPECT_NEAR(chance.accuracy, 0.5, full ? 0.075 : 0.15);
}

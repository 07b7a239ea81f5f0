#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "crnn/nn/sequence_classifier.h"
#include "nn/gradcheck.h"
#include "support/test_support.h"

using namespace crnn::nn;

TEST(SequenceClassifier, PresetsHaveThePapersSizes) {
  {
    auto o = SequenceClassifierOptions::preset("emotion-clstm", 5);
    EXPECT_EQ(o.front_end().size(), 2u);
    EXPECT_FALSE(o.bidirectional());
    EXPECT_EQ(o.recurrent_size(), 256);
    EXPECT_EQ(o.dense_size(), 400);
    EXPECT_EQ(o.average_last(), 4);
    for (auto& l : o.front_end()) {
      EXPECT_EQ(l.window(), 5);
      EXPECT_EQ(l.shift(), 2);
      EXPECT_EQ(l.features(), 100);
      EXPECT_EQ(l.pool(), 2);
      EXPECT_EQ(l.pool_shift(), 2);
      EXPECT_EQ(l.source(), FeatureSource::cell);
      EXPECT_EQ(l.reduce(), WindowReduce::last);
    }
    SequenceClassifier m(o);
    // LSTM(26 → 100) with peepholes: 4·100·26 + 4·100·100 + 4·100 + 3·100 = 51,100;
    // second: 4·100·100·2 + 400 + 300 = 80,700; LSTM(100 → 256): 4·256·(100 + 256) +
    // 4·256 + 3·256 = 366,336; Dense 256·400 + 400 = 102,800; softmax 400·5 + 5 = 2,005.
    int64_t count = 0;
    for (auto& p : m->parameters()) count += p.numel();
    EXPECT_EQ(count, 51100 + 80700 + 366336 + 102800 + 2005);
  }
  {
    auto o = SequenceClassifierOptions::preset("agender-cblstm", 3);
    ASSERT_EQ(o.front_end().size(), 1u);
    EXPECT_TRUE(o.bidirectional());
    EXPECT_EQ(o.average_last(), 0);
    const auto& l = o.front_end()[0];
    EXPECT_EQ(l.kind(), RecurrentKind::blstm);
    EXPECT_EQ(l.hidden_size(), 100);
    EXPECT_EQ(l.source(), FeatureSource::output);
    EXPECT_EQ(l.combine(), FeatureSource::cell);  // eq. 9
    EXPECT_EQ(l.reduce(), WindowReduce::max);
    SequenceClassifier m(o);
    EXPECT_EQ(m->dense->weight.size(1), 512);  // both directions' hidden states fed on
  }
  EXPECT_EQ(SequenceClassifierOptions::preset("emotion-baseline", 2).front_end().size(), 0u);
  EXPECT_TRUE(SequenceClassifierOptions::preset("emotion-eclstm", 2).front_end()[0].extended());
  EXPECT_TRUE(SequenceClassifierOptions::preset("agender-conv", 2).front_end()[0].convolutional());
  EXPECT_EQ(SequenceClassifierOptions::preset("agender-clstm", 2).front_end()[0].reduce(), WindowReduce::max);
  // Whichever part of the name is wrong (no setup, setup, front end), the error lists the known presets.
  for (const char* bad : {"transformer", "speech-clstm", "emotion-transformer", "agender-eclstm"}) {
    const std::string what = crnn::test::error_of([&] { SequenceClassifierOptions::preset(bad, 2); });
    EXPECT_TRUE(crnn::test::contains(what, std::string("unknown model preset '") + bad + "'; known presets: emotion-baseline"));
    EXPECT_TRUE(crnn::test::contains(what, "agender-cblstm"));
  }
  for (auto& name : SequenceClassifierOptions::preset_names()) {
    SequenceClassifier m(SequenceClassifierOptions::preset(name, 4));
    auto out = m(PaddedSequence{torch::randn({2, 60, 26}), torch::tensor({60, 9}, torch::kLong)});
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 4})) << name;
    EXPECT_TRUE(torch::allclose(out.exp().sum(1), torch::ones({2}), 1e-5)) << name;
  }
}

// The prediction is the mean of the per-step softmax over the last N valid
// steps (all steps when N = 0), computed here directly from probabilities.
TEST(SequenceClassifier, AveragesSoftmaxOverTheLastSteps) {
  torch::manual_seed(3);
  auto lp = torch::log_softmax(torch::randn({2, 6, 3}), -1);
  auto lengths = torch::tensor({6, 3}, torch::kLong);
  auto p = lp.exp();
  auto got4 = average_log_probs({lp, lengths}, 4).exp();
  EXPECT_TRUE(torch::allclose(got4[0], p[0].narrow(0, 2, 4).mean(0), 1e-6));
  EXPECT_TRUE(torch::allclose(got4[1], p[1].narrow(0, 0, 3).mean(0), 1e-6));  // fewer than 4 steps
  auto got_all = average_log_probs({lp, lengths}, 0).exp();
  EXPECT_TRUE(torch::allclose(got_all[0], p[0].mean(0), 1e-6));
  EXPECT_TRUE(torch::allclose(got_all[1], p[1].narrow(0, 0, 3).mean(0), 1e-6));
}

TEST(SequenceClassifier, GradientsMatchFiniteDifferences) {
  torch::manual_seed(4);
  SequenceClassifierOptions o(3, 3);
  o.front_end({FrontEndLayerOptions().features(4).window(3).shift(2).pool(2).pool_shift(1)
                   .source(FeatureSource::cell)})
      .recurrent_size(3).bidirectional(true).dense_size(5).average_last(2);
  SequenceClassifier m(o);
  m->to(torch::kDouble);
  auto x = torch::randn({2, 10, 3}, torch::kDouble).requires_grad_(true);
  auto lengths = torch::tensor({10, 6}, torch::kLong);
  auto labels = torch::tensor({0, 2}, torch::kLong);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : m->named_parameters()) tensors.emplace_back(p.key(), p.value());
  tensors.emplace_back("input", x);
  crnn::testing::expect_gradients_match(
      [&] { return torch::nll_loss(m(PaddedSequence{x, lengths}), labels); }, tensors, 1e-6,
      1e-7, 1e-5, 8);
}

TEST(SequenceClassifier, SaveLoadRoundTripRestoresIdenticalOutputs) {
  torch::manual_seed(5);
  auto o = SequenceClassifierOptions::preset("agender-cblstm", 3, 8);
  SequenceClassifier a(o);
  auto path = std::filesystem::temp_directory_path() / "crnn_roundtrip_test.pt";
  torch::save(a, path.string());
  torch::manual_seed(99);  // a differently initialized copy
  SequenceClassifier b(o);
  PaddedSequence x{torch::randn({2, 40, 8}), torch::tensor({40, 17}, torch::kLong)};
  a->eval();
  b->eval();
  EXPECT_FALSE(torch::equal(a(x), b(x)));
  torch::load(b, path.string());
  EXPECT_TRUE(torch::equal(a(x), b(x)));
  std::filesystem::remove(path);
}

TEST(SequenceClassifier, SameSeedSameInitialization) {
  auto o = SequenceClassifierOptions::preset("emotion-eclstm", 4);
  torch::manual_seed(42);
  SequenceClassifier a(o);
  torch::manual_seed(42);
  SequenceClassifier b(o);
  auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
}

// Learning test: class 1 sequences hide a 3-frame motif (+2, −2, +2 in feature
// 0) at a random position in noise; class 0 is noise alone. A small CLSTM
// classifier, predicting from its last 2 steps (the motif may come late, so
// averaging every step of a forward LSTM would be ambiguous), must reach ≥ 95%
// accuracy on held-out sequences.
TEST(SequenceClassifier, CLSTMLearnsASyntheticMotifTask) {
  torch::manual_seed(0);
  auto gen = at::detail::createCPUGenerator(0);
  auto make = [&](int64_t n) {
    auto lengths = torch::randint(16, 25, {n}, gen, torch::kLong);
    auto x = torch::randn({n, 24, 4}, gen) * 0.5;
    auto labels = torch::randint(0, 2, {n}, gen, torch::kLong);
    for (int64_t i = 0; i < n; ++i) {
      if (labels[i].item<int64_t>() == 1) {
        int64_t pos = torch::randint(0, lengths[i].item<int64_t>() - 3, {1}, gen).item<int64_t>();
        x[i][pos][0] += 2;
        x[i][pos + 1][0] -= 2;
        x[i][pos + 2][0] += 2;
      }
    }
    return std::make_tuple(x, lengths, labels);
  };
  auto [xtr, ltr, ytr] = make(512);
  auto [xte, lte, yte] = make(256);
  SequenceClassifierOptions o(4, 2);
  o.front_end({FrontEndLayerOptions().features(12).window(3).shift(1).pool(2).pool_shift(2)
                   .source(FeatureSource::hidden).reduce(WindowReduce::last)})
      .recurrent_size(16).dense_size(16).average_last(2);
  SequenceClassifier m(o);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(0.01));
  auto start = std::chrono::steady_clock::now();
  double acc = 0;
  for (int epoch = 0; epoch < 60 && acc < 0.97; ++epoch) {
    m->train();
    auto perm = torch::randperm(512, gen, torch::kLong);
    for (int64_t b = 0; b < 512; b += 32) {
      auto idx = perm.narrow(0, b, 32);
      opt.zero_grad();
      auto loss = torch::nll_loss(m(PaddedSequence{xtr.index_select(0, idx), ltr.index_select(0, idx)}),
                                  ytr.index_select(0, idx));
      loss.backward();
      opt.step();
    }
    torch::NoGradGuard g;
    m->eval();
    auto pred = m(PaddedSequence{xte, lte}).argmax(1);
    acc = (pred == yte).to(torch::kFloat).mean().item<double>();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(acc, 0.95) << "held-out accuracy after " << secs << " s";
}

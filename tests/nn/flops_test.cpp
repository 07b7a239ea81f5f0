// forward_flops: the nominal GEMM work of flops.h's definition, worked out by
// hand for each kind of front end (numbers below derived in the comments, not
// taken from the code's output).
#include <gtest/gtest.h>

#include "crnn/nn/flops.h"

using crnn::nn::forward_flops;
using crnn::nn::SequenceClassifierOptions;
using crnn::nn::training_flops;

// emotion-clstm, 26 features, 8 classes, 2 sequences of 60 frames.
// Layer 1 (r1 = 5, shift 2, n = m = 100, LSTM: G·m = 400): floor((60 − 5)/2) + 1 = 28
//   windows of 5·2·26·400 + 4·2·100·400 = 424,000; pooled 2/2 → 14 steps.
// Layer 2 (k = 100): floor((14 − 5)/2) + 1 = 5 windows of 5·2·100·400 + 4·2·100·400
//   = 720,000; pooled → 2 steps.
// LSTM(256), 2 steps: 2·2·100·1024 + 1·2·256·1024 = 933,888; Dense: 2·2·256·400 =
//   409,600; classes: 2·2·400·8 = 12,800.
// Per sequence 11,872,000 + 3,600,000 + 933,888 + 409,600 + 12,800 = 16,828,288.
TEST(Flops, EmotionClstmByHand) {
  const auto o = SequenceClassifierOptions::preset("emotion-clstm", 8, 26);
  EXPECT_DOUBLE_EQ(forward_flops(o, 2, 60), 2 * 16828288.0);
  EXPECT_DOUBLE_EQ(training_flops(o, 2, 60), 3 * 2 * 16828288.0);
}

// agender-cblstm, 26 features, 3 classes, one sequence of 60 frames.
// Front end: BLSTM m = 100 per direction, source=output (n = 100 from 2·100
//   states): per window 2·424,000 + 5·2·200·100 = 1,048,000; 28 windows → 14 steps.
// BLSTM(2 × 256), 14 steps: 2·(14·2·100·1024 + 13·2·256·1024) = 19,365,888;
// Dense over 512: 14·2·512·400 = 5,734,400; classes: 14·2·400·3 = 33,600.
TEST(Flops, AgenderCblstmByHand) {
  const auto o = SequenceClassifierOptions::preset("agender-cblstm", 3, 26);
  EXPECT_DOUBLE_EQ(forward_flops(o, 1, 60), 28 * 1048000.0 + 19365888 + 5734400 + 33600);
}

// agender-conv: 28 windows of 2·5·26·100 = 26,000, then the classifier of the
// CBLSTM case (14 steps, k = 100). agender-baseline: the BLSTM on the 60 frames
// themselves: 2·(60·2·26·1024 + 59·2·256·1024) + 60·2·512·400 + 60·2·400·3.
TEST(Flops, ConvAndBaselineByHand) {
  EXPECT_DOUBLE_EQ(forward_flops(SequenceClassifierOptions::preset("agender-conv", 3, 26), 1, 60),
                   28 * 26000.0 + 19365888 + 5734400 + 33600);
  EXPECT_DOUBLE_EQ(forward_flops(SequenceClassifierOptions::preset("agender-baseline", 3, 26), 1, 60),
                   2 * (60 * 2 * 26 * 1024.0 + 59 * 2 * 256 * 1024.0) + 60 * 2 * 512 * 400.0 + 60 * 2 * 400 * 3.0);
}

// A window's first step has h = 0, so an RNN layer of window 1 costs only its
// input projection: 2·k·m per window (G = 1), k = 26, m = n = 10, shift 1, no pooling.
TEST(Flops, RnnLayerHasOneGateAndNoRecurrentProductInAOneFrameWindow) {
  auto o = SequenceClassifierOptions::preset("emotion-baseline", 2, 26);
  // No front end: LSTM(256) over 7 steps of 26 features, Dense, 2 classes:
  // 7·2·26·1024 + 6·2·256·1024 + 7·2·256·400 + 7·2·400·2 = 4,963,264.
  const double classifier = 7 * 2 * 26 * 1024.0 + 6 * 2 * 256 * 1024.0 + 7 * 2 * 256 * 400.0 + 7 * 2 * 400 * 2.0;
  EXPECT_DOUBLE_EQ(forward_flops(o, 1, 7), 4963264.0);
  EXPECT_DOUBLE_EQ(classifier, 4963264.0);
  auto layer = crnn::nn::FrontEndLayerOptions().features(26).window(1).shift(1).pool(1).pool_shift(1)
                   .kind(crnn::nn::RecurrentKind::rnn).source(crnn::nn::FeatureSource::output).hidden_size(10);
  o.front_end({layer});
  // 7 windows × (2·26·10 input projection + 2·10·26 output map), then the same classifier (k = 26).
  EXPECT_DOUBLE_EQ(forward_flops(o, 1, 7), classifier + 7 * (2 * 26 * 10.0 + 2 * 10 * 26.0));
  EXPECT_THROW(forward_flops(o, 0, 7), c10::Error);
}

// The analytic parameter count equals the built module's, for every preset.
TEST(Flops, ParameterPartsCountTheBuiltModelsParameters) {
  for (const auto& name : crnn::nn::SequenceClassifierOptions::preset_names()) {
    const auto o = crnn::nn::SequenceClassifierOptions::preset(name, 3);
    crnn::nn::SequenceClassifier model(o);
    double built = 0;
    for (const auto& p : model->parameters()) built += static_cast<double>(p.numel());
    double counted = 0;
    for (const auto& part : crnn::nn::parameter_parts(o)) counted += part.count;
    EXPECT_EQ(counted, built) << name;
  }
}

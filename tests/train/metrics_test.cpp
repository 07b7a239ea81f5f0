#include <gtest/gtest.h>

#include <cmath>

#include "crnn/train/metrics.h"
#include "crnn/train/repeat.h"

using crnn::train::ConfusionMatrix;

// Hand-worked: class 0 has 4 examples (3 right), class 1 has 2 (1 right),
// class 2 has 4 (4 right). Recalls 0.75, 0.5, 1.0 → UA = 2.25 / 3 = 0.75;
// WA = 8 / 10 = 0.8.
TEST(Metrics, UARecallAndWAByHand) {
  ConfusionMatrix cm(3);
  for (int i = 0; i < 3; ++i) cm.add(0, 0);
  cm.add(0, 2);
  cm.add(1, 1);
  cm.add(1, 0);
  for (int i = 0; i < 4; ++i) cm.add(2, 2);
  auto r = cm.per_class_recall();
  EXPECT_DOUBLE_EQ(r[0], 0.75);
  EXPECT_DOUBLE_EQ(r[1], 0.5);
  EXPECT_DOUBLE_EQ(r[2], 1.0);
  EXPECT_DOUBLE_EQ(cm.ua_recall(), 0.75);
  EXPECT_DOUBLE_EQ(cm.wa(), 0.8);
  EXPECT_EQ(cm.counts()[0][2], 1);
  EXPECT_EQ(cm.total(), 10);
}

TEST(Metrics, ClassesWithoutExamplesAreLeftOutOfUA) {
  ConfusionMatrix cm(3);
  cm.add(torch::tensor({0, 0, 1}, torch::kLong), torch::tensor({0, 1, 1}, torch::kLong));
  EXPECT_TRUE(std::isnan(cm.per_class_recall()[2]));
  EXPECT_DOUBLE_EQ(cm.ua_recall(), (0.5 + 1.0) / 2);
  EXPECT_THROW(cm.add(3, 0), c10::Error);
}


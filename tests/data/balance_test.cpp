#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "crnn/data/balance.h"

using namespace crnn::data;

namespace {
// Class sizes 5, 2, 7 (largest), 1 — in shuffled positions.
const std::vector<int64_t> kLabels{2, 0, 2, 1, 0, 2, 3, 0, 2, 2, 1, 0, 2, 0, 2};
}  // namespace

TEST(Oversample, EveryClassFilledToTheLargest) {
  auto idx = oversample_indices(kLabels, {3});
  std::map<int64_t, int> count;
  for (int64_t i : idx) ++count[kLabels[static_cast<size_t>(i)]];
  EXPECT_EQ(count, (std::map<int64_t, int>{{0, 7}, {1, 7}, {2, 7}, {3, 7}}));
  ASSERT_EQ(idx.size(), 28u);
  // The originals come first, in order: the training set itself is untouched.
  for (size_t i = 0; i < kLabels.size(); ++i) EXPECT_EQ(idx[i], static_cast<int64_t>(i));
}

TEST(Oversample, NoExampleCopiedTwiceBeforeAllOfItsClassOnce) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto idx = oversample_indices(kLabels, {seed});
    // Walk the copies; per class, each new "round" may only start once every
    // member of the class has been copied in the current round.
    std::map<int64_t, std::vector<int64_t>> members;
    for (size_t i = 0; i < kLabels.size(); ++i) members[kLabels[i]].push_back(static_cast<int64_t>(i));
    std::map<int64_t, std::map<int64_t, int>> copies;  // class → example → copies so far
    for (size_t j = kLabels.size(); j < idx.size(); ++j) {
      const int64_t c = kLabels[static_cast<size_t>(idx[j])];
      int& mine = copies[c][idx[j]];
      for (int64_t other : members[c]) EXPECT_GE(copies[c][other], mine) << "seed " << seed;
      ++mine;
    }
    // Final multiplicities within a class differ by at most one.
    for (auto& [c, m] : copies) {
      int lo = 1 << 30, hi = 0;
      for (int64_t e : members[c]) lo = std::min(lo, m[e]), hi = std::max(hi, m[e]);
      EXPECT_LE(hi - lo, 1);
    }
    // Class 3 (one example) needs 6 copies of it; class 1 (two examples) 5 copies: 3 + 2.
    EXPECT_EQ(copies[3][6], 6);
    EXPECT_EQ(std::max(copies[1][3], copies[1][10]), 3);
    EXPECT_EQ(std::min(copies[1][3], copies[1][10]), 2);
  }
}

TEST(Oversample, SeedDeterminesTheCopies) {
  EXPECT_EQ(oversample_indices(kLabels, {5}), oversample_indices(kLabels, {5}));
  int differing = 0;
  for (uint64_t s = 1; s <= 10; ++s) differing += oversample_indices(kLabels, {0}) != oversample_indices(kLabels, {s});
  EXPECT_GE(differing, 9);
}

TEST(Oversample, EdgeCases) {
  EXPECT_TRUE(oversample_indices({}, {}).empty());
  EXPECT_EQ(oversample_indices({4, 4, 9, 9}, {}), (std::vector<int64_t>{0, 1, 2, 3}));  // balanced
  // Non-contiguous label values work; the helper returns the items themselves.
  std::vector<std::string> items{"a", "b", "c"};
  auto out = oversample(items, [](const std::string& s) { return s == "c" ? 100 : -1; }, {1});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3], "c");
}

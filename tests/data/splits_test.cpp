#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "crnn/data/splits.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::contains;
using crnn::test::error_of;

namespace {

// 24 speakers s00..s23: gender alternates f/m; age class cycles child, youth,
// adult; speaker i has 3 + (i % 5) utterances (unequal, to exercise balancing),
// each with an emotion that varies within the speaker.
Manifest synthetic(bool with_split) {
  Manifest m({"emotion", "gender", "age"});
  const char* ages[] = {"child", "youth", "adult"};
  const char* emotions[] = {"happy", "sad", "angry"};
  for (int s = 0; s < 24; ++s) {
    char spk[8];
    std::snprintf(spk, sizeof spk, "s%02d", s);
    for (int u = 0; u < 3 + s % 5; ++u) {
      Utterance x;
      x.id = std::string(spk) + "_" + std::to_string(u);
      x.path = "/data/" + x.id + ".wav";
      x.speaker = spk;
      x.labels = {{"emotion", emotions[u % 3]}, {"gender", s % 2 ? "m" : "f"}, {"age", ages[s % 3]}};
      if (with_split) x.split = s < 16 ? "train" : "test";
      m.add(x);
    }
  }
  return m;
}

std::map<std::string, std::set<std::string>> splits_of_speakers(const Manifest& m) {
  std::map<std::string, std::set<std::string>> r;
  for (const auto& u : m.utterances()) r[u.speaker].insert(u.split);
  return r;
}

std::vector<std::string> split_column(const Manifest& m) {
  std::vector<std::string> v;
  for (const auto& u : m.utterances()) v.push_back(u.split);
  return v;
}

}  // namespace

TEST(Splits, KFoldIsSpeakerIndependentForManySeedsAndK) {
  const Manifest m = synthetic(false);
  for (int64_t k = 3; k <= 8; ++k) {
    for (uint64_t seed = 0; seed < 6; ++seed) {
      KFoldOptions o{k, seed};
      auto folds = assign_speaker_folds(m, o);
      ASSERT_EQ(folds.size(), 24u);
      std::vector<int64_t> load(static_cast<size_t>(k), 0);
      for (const auto& u : m.utterances()) ++load[static_cast<size_t>(folds.at(u.speaker))];
      // Greedy largest-first: folds differ by at most the largest speaker (7 utterances).
      auto [lo, hi] = std::minmax_element(load.begin(), load.end());
      EXPECT_GT(*lo, 0);
      EXPECT_LE(*hi - *lo, 7) << "k=" << k << " seed=" << seed;

      std::set<std::string> test_speakers_seen;
      for (int64_t f = 0; f < k; ++f) {
        Manifest r = kfold(m, f, o);
        ASSERT_EQ(r.size(), m.size());
        for (const auto& [spk, s] : splits_of_speakers(r)) EXPECT_EQ(s.size(), 1u) << spk << " in two splits";
        Splits s = split_by_column(r);
        EXPECT_EQ(s.train.size() + s.valid.size() + s.test.size(), m.size());
        EXPECT_FALSE(s.test.empty());
        EXPECT_FALSE(s.valid.empty());
        EXPECT_FALSE(s.train.empty());
        for (const auto& spk : s.test.speakers()) EXPECT_TRUE(test_speakers_seen.insert(spk).second);
      }
      // Over the k rounds every speaker is tested exactly once.
      EXPECT_EQ(test_speakers_seen.size(), 24u);
    }
  }
}

TEST(Splits, KFoldSameSeedSameSplitDifferentSeedDifferent) {
  const Manifest m = synthetic(false);
  EXPECT_EQ(split_column(kfold(m, 1, {5, 42})), split_column(kfold(m, 1, {5, 42})));
  int differing = 0;
  for (uint64_t seed = 1; seed < 6; ++seed)
    differing += split_column(kfold(m, 1, {5, 0})) != split_column(kfold(m, 1, {5, seed}));
  EXPECT_GE(differing, 4);
}

TEST(Splits, KFoldBadArguments) {
  const Manifest m = synthetic(false);
  EXPECT_TRUE(contains(error_of([&] { kfold(m, 0, {2, 0}); }), "k must be >= 3"));
  EXPECT_TRUE(contains(error_of([&] { kfold(m, 0, {25, 0}); }), "24 speakers cannot fill 25 folds"));
  EXPECT_TRUE(contains(error_of([&] { kfold(m, 5, {5, 0}); }), "fold 5 out of range"));
}

TEST(Splits, CarveValidationPerClassForSpeakerLevelTask) {
  const Manifest m = synthetic(true);  // s00..s15 train, s16..s23 test
  for (uint64_t seed = 0; seed < 8; ++seed) {
    ValidationOptions o;
    o.task = "age";
    o.speakers_per_class = 2;
    o.seed = seed;
    Manifest r = carve_validation(m, o);
    for (const auto& [spk, s] : splits_of_speakers(r)) EXPECT_EQ(s.size(), 1u);
    Splits s = split_by_column(r);
    // Test is untouched, valid comes only from former training speakers.
    EXPECT_EQ(s.test.speakers(), m.subset("test").speakers());
    std::map<std::string, int> per_age;
    for (const auto& spk : s.valid.speakers()) {
      int idx = std::stoi(spk.substr(1));
      EXPECT_LT(idx, 16) << spk;
      ++per_age[s.valid.find(spk + "_0").label("age")];
    }
    EXPECT_EQ(per_age, (std::map<std::string, int>{{"adult", 2}, {"child", 2}, {"youth", 2}}));
    EXPECT_EQ(s.train.speakers().size(), 16u - 6u);
  }
}

TEST(Splits, CarveValidationBalancesByGenderWhenTaskVariesWithinSpeaker) {
  const Manifest m = synthetic(false);  // no split column: all speakers are candidates
  ValidationOptions o;
  o.task = "emotion";
  o.speakers_per_class = 3;
  o.seed = 9;
  Manifest r = carve_validation(m, o);
  Splits s = split_by_column(r);  // no "" left: the rest became train
  EXPECT_TRUE(s.test.empty());
  std::map<std::string, int> per_gender;
  for (const auto& spk : s.valid.speakers()) ++per_gender[s.valid.find(spk + "_0").label("gender")];
  EXPECT_EQ(per_gender, (std::map<std::string, int>{{"f", 3}, {"m", 3}}));
  EXPECT_EQ(split_column(r), split_column(carve_validation(m, o))) << "same seed, same split";
  o.seed = 10;
  EXPECT_NE(split_column(r), split_column(carve_validation(m, o)));
}

// stratify_by names the speaker-level column to balance by (the age column
// here, which "gender" would not find), and carve_validation says what it used.
TEST(Splits, CarveValidationBalancesByTheStratifyByColumn) {
  const Manifest m = synthetic(false);
  ValidationOptions o;
  o.task = "emotion";
  o.speakers_per_class = 2;
  o.stratify_by = "age";
  std::string by;
  Splits s = split_by_column(carve_validation(m, o, &by));
  EXPECT_EQ(by, "age");
  std::map<std::string, int> per_age;
  for (const auto& spk : s.valid.speakers()) ++per_age[s.valid.find(spk + "_0").label("age")];
  EXPECT_EQ(per_age, (std::map<std::string, int>{{"adult", 2}, {"child", 2}, {"youth", 2}}));
  o.stratify_by = "";
  carve_validation(m, o, &by);
  EXPECT_EQ(by, "gender");  // the default: the first speaker-level column named like gender
  o.stratify_by = "sex";
  EXPECT_TRUE(contains(error_of([&] { carve_validation(m, o); }), "stratify_by: no label column 'sex'"));
  o.stratify_by = "emotion";
  EXPECT_TRUE(contains(error_of([&] { carve_validation(m, o); }), "is not speaker-level"));
}

TEST(Splits, CarveValidationWithoutStrataPicksNSpeakers) {
  Manifest m({"emotion"});
  for (int s = 0; s < 6; ++s)
    for (int u = 0; u < 2; ++u)
      m.add({"s" + std::to_string(s) + "_" + std::to_string(u), "/x", "s" + std::to_string(s),
             {{"emotion", u ? "a" : "b"}}, ""});
  ValidationOptions o;
  o.task = "emotion";
  o.speakers_per_class = 2;
  EXPECT_EQ(split_by_column(carve_validation(m, o)).valid.speakers().size(), 2u);
  o.speakers_per_class = 6;
  EXPECT_TRUE(contains(error_of([&] { carve_validation(m, o); }), "keep one for training"));
}

TEST(Splits, SpeakerInTwoSplitsIsRejected) {
  Manifest m;
  m.add({"a", "/a", "alice", {}, "train"});
  m.add({"b", "/b", "alice", {}, "test"});
  EXPECT_TRUE(contains(error_of([&] { split_by_column(m); }),
                       "speaker 'alice' is in two splits: 'train' (a) and 'test' (b)"));
  Manifest n;
  n.add({"a", "/a", "alice", {}, ""});
  EXPECT_TRUE(contains(error_of([&] { split_by_column(n); }), "has no split"));
  // Read from a file: the row is named, and the way out is a config key, not a library call.
  const auto read = Manifest::parse("id,path,speaker,split\na,/a,alice,train\nb,/b,bob,\n", "/", "corpus.csv");
  const auto message = error_of([&] { split_by_column(read); });
  EXPECT_TRUE(contains(message, "corpus.csv:3: utterance 'b' has no split (an empty split cell)"));
  EXPECT_TRUE(contains(message, "set data.folds = K to split by speakers instead"));
  EXPECT_FALSE(contains(message, "library"));
  // One of a speaker's rows left empty: the empty cell is the message, not
  // "in two splits: 'train' and '(none)'", also where validation is carved.
  const auto partly = Manifest::parse("id,path,speaker,split\na,/a,alice,train\nb,/b,alice,\nc,/c,bob,test\n", "/",
                                      "corpus.csv");
  for (const auto& m : {error_of([&] { split_by_column(partly); }),
                        error_of([&] { carve_validation(partly, ValidationOptions{}); })}) {
    EXPECT_TRUE(contains(m, "corpus.csv:3: utterance 'b' has no split (an empty split cell)")) << m;
    EXPECT_FALSE(contains(m, "(none)")) << m;
  }
}

TEST(Splits, SpeakerLabels) {
  const Manifest m = synthetic(false);
  EXPECT_EQ(speaker_labels(m, "gender").size(), 24u);
  EXPECT_EQ(speaker_labels(m, "gender").at("s03"), "m");
  EXPECT_TRUE(speaker_labels(m, "emotion").empty());
}

TEST(Splits, MembersGroupIdsBySplitAndSpeakerSorted) {
  Manifest m({"emotion"});
  for (const auto& [id, spk, split] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"b2", "bob", "train"}, {"a1", "ann", "train"}, {"b1", "bob", "train"}, {"c1", "cy", "test"},
           {"d1", "dee", ""}}) {
    Utterance u;
    u.id = id, u.speaker = spk, u.split = split, u.path = "/x/" + id + ".wav";
    m.add(u);
  }
  const SplitMembers want{{"train", {{"ann", {"a1"}}, {"bob", {"b1", "b2"}}}}, {"test", {{"cy", {"c1"}}}}};
  EXPECT_EQ(split_members(m), want);  // the unassigned row is no member
}

TEST(Splits, ChangesNameEachSpeakersMovesAndCapTheList) {
  const SplitMembers before{{"train", {{"ann", {"a1", "a2"}}, {"bob", {"b1"}}}}, {"test", {{"cy", {"c1", "c2"}}}}};
  EXPECT_TRUE(split_changes(before, before).empty());
  // cy's two utterances trade places with ann's; bob's utterance is gone, dee is new,
  // and a1 changed speaker.
  const SplitMembers now{{"train", {{"cy", {"c1", "c2"}}, {"dee", {"d1"}}}},
                         {"test", {{"ann", {"a2"}}, {"eve", {"a1"}}}}};
  EXPECT_EQ(split_changes(before, now),
            (std::vector<std::string>{"speaker 'ann': 1 utterance(s) train → test",
                                      "speaker 'bob': 1 utterance(s) train → (not in the manifest)",
                                      "speaker 'cy': 2 utterance(s) test → train",
                                      "speaker 'dee': 1 utterance(s) new in train",
                                      "utterance 'a1': speaker 'ann' → 'eve'"}));
  EXPECT_EQ(split_changes(before, now, 2),
            (std::vector<std::string>{"speaker 'ann': 1 utterance(s) train → test",
                                      "speaker 'bob': 1 utterance(s) train → (not in the manifest)", "… and 3 more"}));
}

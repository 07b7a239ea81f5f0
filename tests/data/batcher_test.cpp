#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "crnn/data/batcher.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::contains;
using crnn::test::error_of;

namespace {
// 50 examples with lengths 1..50 in scrambled order; example i has length
// len(i), label i % 4, every frame filled with value i + 1 (never 0, so that
// padding is recognisable).
int64_t len(int64_t i) { return (i * 17) % 50 + 1; }
std::vector<Example> dataset(int64_t n = 50, int64_t k = 3) {
  std::vector<Example> d;
  for (int64_t i = 0; i < n; ++i)
    d.push_back({torch::full({len(i), k}, static_cast<float>(i + 1)), i % 4, "u" + std::to_string(i)});
  return d;
}
std::vector<Batch> drain(BatchStream s) {
  std::vector<Batch> out;
  while (auto b = s.next()) out.push_back(std::move(*b));
  return out;
}
std::vector<std::string> id_order(const std::vector<Batch>& bs) {
  std::vector<std::string> ids;
  for (const auto& b : bs) ids.insert(ids.end(), b.ids.begin(), b.ids.end());
  return ids;
}
// Runs fn on a detached thread; false if it does not finish within `seconds`
// (so a hang fails the test instead of blocking the suite).
bool finishes_within(std::function<void()> fn, double seconds) {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  std::thread([fn, done] {
    fn();
    done->set_value();
  }).detach();
  return f.wait_for(std::chrono::duration<double>(seconds)) == std::future_status::ready;
}
}  // namespace

TEST(Batcher, EveryExampleExactlyOncePerEpochWithCorrectPaddingLengthsLabels) {
  BatcherOptions o;
  o.batch_size = 4;
  o.batches_per_bucket = 2;
  o.seed = 1;
  Batcher batcher(dataset(), o);
  EXPECT_EQ(batcher.batches_per_epoch(), 13);  // ceil(50 / 4)
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto batches = drain(batcher.epoch(epoch));
    ASSERT_EQ(batches.size(), 13u);
    std::multiset<std::string> seen;
    for (const auto& b : batches) {
      const int64_t B = static_cast<int64_t>(b.ids.size());
      ASSERT_EQ(b.features.dim(), 3);
      EXPECT_EQ(b.features.scalar_type(), torch::kFloat32);
      EXPECT_EQ(b.lengths.scalar_type(), torch::kInt64);
      EXPECT_EQ(b.labels.scalar_type(), torch::kInt64);
      EXPECT_EQ(b.features.size(0), B);
      EXPECT_EQ(b.features.size(2), 3);
      int64_t tmax = 0;
      for (int64_t j = 0; j < B; ++j) {
        const int64_t i = std::stoll(b.ids[static_cast<size_t>(j)].substr(1));
        seen.insert(b.ids[static_cast<size_t>(j)]);
        EXPECT_EQ(b.indices[static_cast<size_t>(j)], i);
        EXPECT_EQ(b.lengths[j].item<int64_t>(), len(i));
        EXPECT_EQ(b.labels[j].item<int64_t>(), i % 4);
        tmax = std::max(tmax, len(i));
        auto valid = b.features[j].narrow(0, 0, len(i));
        EXPECT_TRUE(valid.eq(static_cast<float>(i + 1)).all().item<bool>());
        auto pad = b.features[j].narrow(0, len(i), b.features.size(1) - len(i));
        EXPECT_TRUE(pad.eq(0).all().item<bool>()) << "padding must be zero";
      }
      EXPECT_EQ(b.features.size(1), tmax) << "padded to the longest in the batch";
    }
    EXPECT_EQ(seen.size(), 50u);
    for (const auto& id : seen) EXPECT_EQ(seen.count(id), 1u) << id;
  }
}

TEST(Batcher, BatchesComeFromOneLengthBucketAndBucketsAreContiguous) {
  // Lengths are 1..50, so sorted bucket m (8 = 2 batches × 4) holds lengths 8m+1 … 8m+8.
  BatcherOptions o;
  o.batch_size = 4;
  o.batches_per_bucket = 2;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    o.seed = seed;
    auto batches = drain(Batcher(dataset(), o).epoch(0));
    std::vector<int64_t> bucket_of_batch;
    for (const auto& b : batches) {
      auto lens = b.lengths;
      const int64_t lo = (lens.min().item<int64_t>() - 1) / 8, hi = (lens.max().item<int64_t>() - 1) / 8;
      EXPECT_EQ(lo, hi) << "a batch mixes buckets";
      bucket_of_batch.push_back(lo);
    }
    // Each bucket appears as one contiguous run of batches.
    std::set<int64_t> finished;
    for (size_t i = 0; i < bucket_of_batch.size(); ++i) {
      if (i > 0 && bucket_of_batch[i] != bucket_of_batch[i - 1]) finished.insert(bucket_of_batch[i - 1]);
      EXPECT_EQ(finished.count(bucket_of_batch[i]), 0u) << "bucket " << bucket_of_batch[i] << " split up";
    }
  }
  // Without shuffling: ascending length order.
  o.shuffle = false;
  auto batches = drain(Batcher(dataset(), o).epoch(0));
  int64_t prev = 0;
  for (const auto& b : batches)
    for (int64_t j = 0; j < b.lengths.size(0); ++j) {
      EXPECT_GE(b.lengths[j].item<int64_t>(), prev);
      prev = b.lengths[j].item<int64_t>();
    }
}

TEST(Batcher, DeterministicGivenSeedAndEpoch) {
  BatcherOptions o;
  o.batch_size = 5;
  o.seed = 77;
  Batcher a(dataset(), o), b(dataset(), o);
  EXPECT_EQ(id_order(drain(a.epoch(3))), id_order(drain(b.epoch(3))));
  EXPECT_EQ(a.plan(3), b.plan(3));
  EXPECT_NE(a.plan(3), a.plan(4)) << "each epoch is shuffled anew";
  o.seed = 78;
  EXPECT_NE(a.plan(3), Batcher(dataset(), o).plan(3));
  // Prefetching changes nothing but timing.
  o.seed = 77;
  o.prefetch = 0;
  EXPECT_EQ(id_order(drain(Batcher(dataset(), o).epoch(3))), id_order(drain(a.epoch(3))));
}

TEST(Batcher, DropLastAndSingleBucket) {
  BatcherOptions o;
  o.batch_size = 8;
  o.batches_per_bucket = 0;
  o.drop_last = true;
  Batcher b(dataset(), o);
  EXPECT_EQ(b.batches_per_epoch(), 6);
  auto batches = drain(b.epoch(0));
  ASSERT_EQ(batches.size(), 6u);
  for (const auto& x : batches) EXPECT_EQ(x.ids.size(), 8u);
  // With buckets of 2 batches, only the last bucket (50 = 3·16 + 2) ends short.
  o.batches_per_bucket = 2;
  for (bool drop : {false, true}) {
    o.drop_last = drop;
    Batcher bb(dataset(), o);
    auto plan = bb.plan(0);
    EXPECT_EQ(static_cast<int64_t>(plan.size()), bb.batches_per_epoch());
    EXPECT_EQ(plan.size(), drop ? 6u : 7u);
    size_t short_batches = 0;
    for (const auto& p : plan) short_batches += p.size() < 8;
    EXPECT_EQ(short_batches, drop ? 0u : 1u);
  }
}

TEST(Batcher, EarlyDestructionDoesNotHang) {
  BatcherOptions o;
  o.batch_size = 2;
  o.prefetch = 1;  // the producer blocks on a full queue almost at once
  Batcher batcher(dataset(200), o);
  EXPECT_TRUE(finishes_within(
      [&] {
        auto s = batcher.epoch(0);
        s.next();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the producer fill the queue
      },
      20.0));
  EXPECT_TRUE(finishes_within([&] { auto s = batcher.epoch(1); }, 20.0));  // never consumed
  EXPECT_TRUE(finishes_within(
      [&] {
        auto s = batcher.epoch(2);
        s = batcher.epoch(3);  // move-assignment stops the first producer
        s.next();
      },
      20.0));
}

TEST(Batcher, ProducerExceptionIsRethrownInTheConsumer) {
  BatcherOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  int calls = 0;
  std::thread::id producer_thread;
  o.transform = [&](Batch& b) {
    producer_thread = std::this_thread::get_id();
    if (++calls == 3) throw std::runtime_error("augmentation failed on batch 3");
    b.features.mul_(2);
  };
  Batcher batcher(dataset(), o);
  auto s = batcher.epoch(0);
  auto first = s.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->features[0][0][0].item<float>(), 2.f * (std::stoll(first->ids[0].substr(1)) + 1));
  ASSERT_TRUE(s.next());
  EXPECT_TRUE(contains(error_of([&] { s.next(); }), "augmentation failed on batch 3"));
  EXPECT_FALSE(s.next()) << "after the error the stream is over";
  EXPECT_NE(producer_thread, std::this_thread::get_id()) << "transform runs on the producer thread";
}

TEST(Batcher, RejectsBadExamples) {
  std::vector<Example> d = dataset(3);
  d.push_back({torch::zeros({4, 2}), 0, "odd"});
  EXPECT_TRUE(contains(error_of([&] { Batcher(d, {}); }), "'odd': 2 features, the first example has 3"));
  EXPECT_TRUE(contains(error_of([] { Batcher(std::vector<Example>{{torch::zeros({0, 3}), 0, "e"}}, {}); }),
                       "'e': no frames"));
  BatcherOptions o;
  o.batch_size = 0;
  EXPECT_TRUE(contains(error_of([&] { Batcher(dataset(3), o); }), "batch_size must be >= 1"));
}

// The default order is class-neutral: with length tied to the class (here the
// class is the length quartile), consecutive batches under batches_per_bucket
// = 8 come from neighbouring lengths eight at a time, so Adam sees long
// stretches of one class; with the default (1) the batch order is shuffled
// over the epoch and a batch's neighbour is no likelier than any other batch
// to hold the same lengths.
TEST(Batcher, DefaultBatchOrderIsShuffledOverTheEpochNotBucketByBucket) {
  std::vector<Example> d;
  for (int64_t i = 0; i < 512; ++i) d.push_back({torch::ones({i + 1, 2}), i * 4 / 512, "u" + std::to_string(i)});
  auto same_class_neighbours = [&](int64_t batches_per_bucket) {
    BatcherOptions o;
    o.batch_size = 8;  // 64 batches
    o.batches_per_bucket = batches_per_bucket;
    o.seed = 3;
    o.prefetch = 0;
    Batcher b(d, o);
    int64_t same = 0, pairs = 0;
    for (int64_t epoch = 0; epoch < 4; ++epoch) {
      const auto batches = drain(b.epoch(epoch));
      for (size_t i = 1; i < batches.size(); ++i, ++pairs)
        same += batches[i].labels[0].item<int64_t>() == batches[i - 1].labels[0].item<int64_t>();
    }
    return static_cast<double>(same) / static_cast<double>(pairs);
  };
  EXPECT_EQ(BatcherOptions{}.batches_per_bucket, 1);
  // 4 classes of 16 batches each: a random order puts the same class next to a
  // batch with probability 15/63 ≈ 0.24; bucket by bucket, 7 of 8 neighbours at least.
  EXPECT_LT(same_class_neighbours(1), 0.4);
  EXPECT_GT(same_class_neighbours(8), 0.85);
}

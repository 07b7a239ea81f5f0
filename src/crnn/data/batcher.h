#pragma once
/// \file batcher.h
/// Length-bucketed, shuffled minibatches with background prefetch.
///
/// Per epoch (docs/batching.md): examples are sorted by length (random
/// tie-break) and cut into buckets of `batch_size · batches_per_bucket`
/// neighbours; each bucket's examples are shuffled and cut into batches; the
/// bucket order is shuffled; batches are delivered bucket by bucket. So a
/// batch holds sequences of similar length (little padding), while the epoch
/// order is random. Everything is drawn from (seed, epoch): same seed and
/// epoch ⇒ same batches, on every platform.
///
/// A producer thread pads and copies up to `prefetch` batches ahead into a
/// bounded queue, so training does not wait on collation in steady state.
/// Destroying the stream early stops the producer (no hang); an exception in
/// the producer (e.g. from `transform`) is re-thrown by `next()` in the
/// consumer.
///
/// \code
///   std::vector<Example> data = ...;                 // {features T×k, label, id}
///   BatcherOptions o; o.batch_size = 16; o.seed = 3;
///   Batcher batcher(std::move(data), o);
///   for (int64_t epoch = 0; epoch < 10; ++epoch) {
///     auto stream = batcher.epoch(epoch);
///     while (auto b = stream.next()) {
///       // b->features B×T×k float32 (zero padded), b->lengths B, b->labels B
///     }
///   }
/// \endcode

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace crnn::data {

/// One sequence: frames × features (float), its class and its id.
struct Example {
  torch::Tensor features;
  int64_t label = 0;
  std::string id;
};

/// A padded minibatch.
struct Batch {
  torch::Tensor features;          ///< B × T × k float32, zeros beyond each length
  torch::Tensor lengths;           ///< B int64
  torch::Tensor labels;            ///< B int64
  std::vector<std::string> ids;    ///< B
  std::vector<int64_t> indices;    ///< B positions in the dataset
};

struct BatcherOptions {
  int64_t batch_size = 32;
  /// Bucket size in batches; 0 = one bucket holding everything (no length
  /// bucketing: plain shuffled batches). 1 (the default): every batch holds
  /// neighbouring lengths and the batch order is shuffled over the whole
  /// epoch; larger buckets deliver their batches in a row, and since length
  /// correlates with the class in speech corpora, those stretches are
  /// class-skewed (docs/batching.md).
  int64_t batches_per_bucket = 1;
  /// false: no randomness; batches in ascending length order.
  bool shuffle = true;
  /// Drop a final batch smaller than batch_size.
  bool drop_last = false;
  uint64_t seed = 0;
  /// Batches prepared ahead by the producer thread; 0 = no thread, each
  /// batch is built inside next().
  int64_t prefetch = 2;
  /// Optional per-batch hook run where the batch is built (the producer
  /// thread), e.g. feature normalization or augmentation.
  std::function<void(Batch&)> transform;
};

/// The batches of one epoch, in order. Move-only; its destructor stops and
/// joins the producer thread.
class BatchStream {
 public:
  struct State;
  explicit BatchStream(std::unique_ptr<State> state);
  BatchStream(BatchStream&&) noexcept;
  BatchStream& operator=(BatchStream&&) noexcept;
  ~BatchStream();

  /// The next batch, or nullopt at the end of the epoch. Re-throws an
  /// exception raised while building a batch.
  std::optional<Batch> next();

 private:
  void stop();
  std::unique_ptr<State> state_;
};

class Batcher {
 public:
  /// Checks the examples (2-D, at least one frame, equal feature counts) and
  /// options; throws DataError naming the offending example.
  Batcher(std::vector<Example> examples, BatcherOptions options = {});
  Batcher(std::shared_ptr<const std::vector<Example>> examples, BatcherOptions options = {});

  /// The batches of `epoch` as dataset positions (deterministic).
  std::vector<std::vector<int64_t>> plan(int64_t epoch) const;
  /// Starts delivering the batches of `epoch`.
  BatchStream epoch(int64_t epoch) const;

  int64_t batches_per_epoch() const;
  size_t size() const { return data_->size(); }
  int64_t num_features() const { return features_; }
  const std::vector<Example>& examples() const { return *data_; }
  const BatcherOptions& options() const { return options_; }

  /// Pads `examples[indices]` into one batch.
  static Batch collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices);

 private:
  void check();
  std::shared_ptr<const std::vector<Example>> data_;
  BatcherOptions options_;
  int64_t features_ = 0;
};

}  // namespace crnn::data

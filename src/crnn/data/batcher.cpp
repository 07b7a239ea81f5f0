#include "crnn/data/batcher.h"

#include <fmt/core.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "crnn/data/error.h"
#include "crnn/data/random.h"

namespace crnn::data {

// --- BatchStream ----------------------------------------------------------------

struct BatchStream::State {
  std::shared_ptr<const std::vector<Example>> data;
  std::vector<std::vector<int64_t>> plan;
  std::function<void(Batch&)> transform;
  size_t capacity = 0;  // 0 = synchronous
  size_t next_sync = 0;

  std::mutex mu;
  std::condition_variable ready;     // consumer waits: a batch or the end
  std::condition_variable has_room;  // producer waits: room in the queue or stop
  std::deque<Batch> queue;
  bool done = false;
  bool stop = false;
  std::exception_ptr error;
  std::thread producer;

  Batch build(size_t i) {
    Batch b = Batcher::collate(*data, plan[i]);
    if (transform) transform(b);
    return b;
  }

  void produce() {
    torch::NoGradGuard no_grad;  // grad mode is thread-local; batches are inputs
    try {
      for (size_t i = 0; i < plan.size(); ++i) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (stop) break;
        }
        Batch b = build(i);
        std::unique_lock<std::mutex> lock(mu);
        has_room.wait(lock, [&] { return stop || queue.size() < capacity; });
        if (stop) break;
        queue.push_back(std::move(b));
        ready.notify_one();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    ready.notify_all();
  }
};

BatchStream::BatchStream(std::unique_ptr<State> state) : state_(std::move(state)) {
  if (state_->capacity > 0) {
    State* s = state_.get();  // the State outlives the thread: stop() joins first
    s->producer = std::thread([s] { s->produce(); });
  }
}

BatchStream::BatchStream(BatchStream&&) noexcept = default;

BatchStream& BatchStream::operator=(BatchStream&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
  }
  return *this;
}

BatchStream::~BatchStream() { stop(); }

void BatchStream::stop() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->has_room.notify_all();
  if (state_->producer.joinable()) state_->producer.join();
}

std::optional<Batch> BatchStream::next() {
  if (!state_) return std::nullopt;
  State& s = *state_;
  if (s.capacity == 0) {
    if (s.next_sync >= s.plan.size()) return std::nullopt;
    return s.build(s.next_sync++);
  }
  std::unique_lock<std::mutex> lock(s.mu);
  s.ready.wait(lock, [&] { return !s.queue.empty() || s.done; });
  if (!s.queue.empty()) {
    Batch b = std::move(s.queue.front());
    s.queue.pop_front();
    lock.unlock();
    s.has_room.notify_one();
    return b;
  }
  if (s.error) {
    auto e = s.error;
    s.error = nullptr;  // thrown once; afterwards the stream is simply over
    std::rethrow_exception(e);
  }
  return std::nullopt;
}

// --- Batcher ------------------------------------------------------------------

Batcher::Batcher(std::vector<Example> examples, BatcherOptions options)
    : Batcher(std::make_shared<const std::vector<Example>>(std::move(examples)), std::move(options)) {}

Batcher::Batcher(std::shared_ptr<const std::vector<Example>> examples, BatcherOptions options)
    : data_(std::move(examples)), options_(std::move(options)) {
  check();
}

void Batcher::check() {
  if (!data_) throw DataError("batcher: null dataset");
  if (options_.batch_size < 1)
    throw DataError(fmt::format("batcher: batch_size must be >= 1, got {}", options_.batch_size));
  if (options_.batches_per_bucket < 0)
    throw DataError(fmt::format("batcher: batches_per_bucket must be >= 0, got {}",
                                options_.batches_per_bucket));
  if (options_.prefetch < 0)
    throw DataError(fmt::format("batcher: prefetch must be >= 0, got {}", options_.prefetch));
  features_ = -1;
  for (size_t i = 0; i < data_->size(); ++i) {
    const Example& e = (*data_)[i];
    const std::string who = e.id.empty() ? fmt::format("example {}", i) : fmt::format("'{}'", e.id);
    if (!e.features.defined() || e.features.dim() != 2)
      throw DataError(fmt::format("batcher: {}: features must be a frames × features tensor", who));
    if (e.features.size(0) < 1) throw DataError(fmt::format("batcher: {}: no frames", who));
    if (!e.features.is_floating_point())
      throw DataError(fmt::format("batcher: {}: features must be floating point", who));
    if (features_ < 0) features_ = e.features.size(1);
    if (e.features.size(1) != features_)
      throw DataError(fmt::format("batcher: {}: {} features, the first example has {}", who,
                                  e.features.size(1), features_));
  }
  if (features_ < 0) features_ = 0;
}

int64_t Batcher::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(data_->size());
  const int64_t bs = options_.batch_size;
  // Buckets hold whole batches, so only the very last batch can be short.
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

std::vector<std::vector<int64_t>> Batcher::plan(int64_t epoch) const {
  const auto& d = *data_;
  const size_t n = d.size();
  const size_t bs = static_cast<size_t>(options_.batch_size);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(options_.seed, static_cast<uint64_t>(epoch));
  if (options_.shuffle) rng.shuffle(order);  // random tie-break among equal lengths
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return d[static_cast<size_t>(a)].features.size(0) < d[static_cast<size_t>(b)].features.size(0);
  });

  const size_t bucket = options_.batches_per_bucket == 0
                            ? std::max<size_t>(n, 1)
                            : bs * static_cast<size_t>(options_.batches_per_bucket);
  std::vector<std::vector<std::vector<int64_t>>> buckets;
  for (size_t start = 0; start < n; start += bucket) {
    std::vector<int64_t> members(order.begin() + static_cast<std::ptrdiff_t>(start),
                                 order.begin() + static_cast<std::ptrdiff_t>(std::min(n, start + bucket)));
    if (options_.shuffle) rng.shuffle(members);
    std::vector<std::vector<int64_t>> batches;
    for (size_t b = 0; b < members.size(); b += bs)
      batches.emplace_back(members.begin() + static_cast<std::ptrdiff_t>(b),
                           members.begin() + static_cast<std::ptrdiff_t>(std::min(members.size(), b + bs)));
    buckets.push_back(std::move(batches));
  }
  if (options_.shuffle) rng.shuffle(buckets);

  std::vector<std::vector<int64_t>> out;
  for (auto& bk : buckets)
    for (auto& b : bk)
      if (!options_.drop_last || b.size() == bs) out.push_back(std::move(b));
  return out;
}

BatchStream Batcher::epoch(int64_t epoch) const {
  auto s = std::make_unique<BatchStream::State>();
  s->data = data_;
  s->plan = plan(epoch);
  s->transform = options_.transform;
  s->capacity = static_cast<size_t>(options_.prefetch);
  return BatchStream(std::move(s));
}

Batch Batcher::collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices) {
  Batch b;
  const int64_t B = static_cast<int64_t>(indices.size());
  int64_t T = 0, k = 0;
  for (int64_t i : indices) {
    const auto& x = examples.at(static_cast<size_t>(i)).features;
    T = std::max(T, x.size(0));
    k = x.size(1);
  }
  b.features = torch::zeros({B, T, k}, torch::kFloat32);
  b.lengths = torch::empty({B}, torch::kInt64);
  b.labels = torch::empty({B}, torch::kInt64);
  auto len = b.lengths.accessor<int64_t, 1>();
  auto lab = b.labels.accessor<int64_t, 1>();
  for (int64_t j = 0; j < B; ++j) {
    const Example& e = examples[static_cast<size_t>(indices[static_cast<size_t>(j)])];
    const int64_t L = e.features.size(0);
    if (e.features.size(1) != k)
      throw DataError(fmt::format("batcher: '{}' has {} features, its batch {}", e.id, e.features.size(1), k));
    b.features[j].narrow(0, 0, L).copy_(e.features);
    len[j] = L;
    lab[j] = e.label;
    b.ids.push_back(e.id);
    b.indices.push_back(indices[static_cast<size_t>(j)]);
  }
  return b;
}

}  // namespace crnn::data

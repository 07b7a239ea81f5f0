#include "crnn/kernels/buffer_pool.h"

#include <cstdlib>
#include <map>
#include <mutex>

namespace crnn::kernels {
namespace {

class BufferPool {
 public:
  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool();  // never destroyed: tensors may outlive main
    return *pool;
  }

  torch::Tensor empty(c10::IntArrayRef sizes, const torch::TensorOptions& opts) {
    int64_t numel = 1;
    for (auto s : sizes) numel *= s;
    const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(c10::typeMetaToScalarType(opts.dtype()));
    if (bytes < kMinBytes) return torch::empty(sizes, opts);
    void* ptr = take(bytes);
    if (!ptr) ptr = std::aligned_alloc(64, round_up(bytes));
    TORCH_CHECK(ptr, "buffer pool: out of memory allocating ", bytes, " bytes");
    const size_t cap = round_up(bytes);
    return torch::from_blob(
        ptr, sizes, [this, cap](void* p) { give_back(p, cap); }, opts);
  }

 private:
  static constexpr size_t kMinBytes = size_t{1} << 20;
  static constexpr size_t kMaxPooledBytes = size_t{1} << 30;
  static size_t round_up(size_t b) { return (b + 4095) / 4096 * 4096; }

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Smallest free block that fits without wasting more than an eighth of it.
    auto it = free_.lower_bound(round_up(bytes));
    if (it == free_.end() || it->first > round_up(bytes) + round_up(bytes) / 8) return nullptr;
    void* p = it->second;
    pooled_ -= it->first;
    free_.erase(it);
    return p;
  }

  void give_back(void* p, size_t cap) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pooled_ + cap > kMaxPooledBytes) {
      std::free(p);
      return;
    }
    free_.emplace(cap, p);
    pooled_ += cap;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t pooled_ = 0;
};

}  // namespace

torch::Tensor pooled_empty(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  return BufferPool::instance().empty(sizes, options);
}

torch::Tensor pooled_zeros(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  return pooled_empty(sizes, options).zero_();
}

torch::Tensor pooled_convert(const torch::Tensor& t, torch::ScalarType dtype) {
  auto out = pooled_empty(t.sizes(), t.options().dtype(dtype));
  out.copy_(t);
  return out;
}

}  // namespace crnn::kernels

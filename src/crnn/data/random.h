#pragma once
/// \file random.h
/// A seeded random source whose output is the same on every platform.
///
/// `std::shuffle` and `std::uniform_int_distribution` are implementation
/// defined, so the same seed would give different splits with libstdc++ and
/// libc++. Splits, oversampling and batch orders are part of an experiment's
/// identity, so they use this fully specified generator instead
/// (mt19937_64, whose sequence the C++ standard fixes, plus rejection sampling).
///
/// \code
///   crnn::data::Rng rng(42);
///   std::vector<int> v{1, 2, 3, 4};
///   rng.shuffle(v);              // the same order for seed 42 everywhere
/// \endcode

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace crnn::data {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(mix(seed)) {}
  /// A seed derived from `seed` and a stream number (e.g. the epoch), so that
  /// neighbouring streams are uncorrelated.
  Rng(uint64_t seed, uint64_t stream) : engine_(mix(mix(seed) ^ mix(stream + 0x51ed27u))) {}

  /// Uniform integer in [0, n); n must be > 0. Unbiased (rejection sampling).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = engine_();
    } while (x >= limit);
    return x % n;
  }

  /// Fisher–Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(below(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  // splitmix64 finaliser: spreads small seeds (0, 1, 2, …) over the state.
  static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::mt19937_64 engine_;
};

}  // namespace crnn::data

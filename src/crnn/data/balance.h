#pragma once
/// \file balance.h
/// Class balancing of a training set by oversampling (SPEC §3).
///
/// Every class is filled up to the size of the largest class with random
/// copies of its own examples, such that no example is copied a second time
/// before every example of its class was copied once: the copies of a class
/// are drawn by walking through a fresh random permutation of the class, one
/// permutation after another. Within a class, the number of copies of any two
/// examples thus differs by at most one. Seeded; apply it to the training set
/// only (validation and test stay untouched).
///
/// \code
///   std::vector<int64_t> labels{0, 0, 0, 1};          // class 1 is short by 2
///   auto idx = oversample_indices(labels, {/*seed=*/7});
///   // idx = {0, 1, 2, 3, 3, 3}: the originals in order, then the copies
/// \endcode

#include <cstddef>
#include <cstdint>
#include <vector>

namespace crnn::data {

struct OversampleOptions {
  uint64_t seed = 0;
};

/// Indices into `labels`: first every original example in order, then the
/// added copies (classes in ascending label order). Labels may be any
/// integers; an empty input gives an empty result.
std::vector<int64_t> oversample_indices(const std::vector<int64_t>& labels,
                                        const OversampleOptions& options = {});

/// Convenience: the balanced set itself (copies of the elements of `items`).
template <typename T, typename LabelOf>
std::vector<T> oversample(const std::vector<T>& items, LabelOf label_of,
                          const OversampleOptions& options = {}) {
  std::vector<int64_t> labels;
  labels.reserve(items.size());
  for (const auto& x : items) labels.push_back(static_cast<int64_t>(label_of(x)));
  std::vector<T> out;
  for (int64_t i : oversample_indices(labels, options)) out.push_back(items[static_cast<size_t>(i)]);
  return out;
}

}  // namespace crnn::data

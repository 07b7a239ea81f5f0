#include "crnn/data/balance.h"

#include <algorithm>
#include <map>

#include "crnn/data/random.h"

namespace crnn::data {

std::vector<int64_t> oversample_indices(const std::vector<int64_t>& labels, const OversampleOptions& options) {
  std::map<int64_t, std::vector<int64_t>> by_class;  // ascending label: a fixed order for the RNG
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  size_t largest = 0;
  for (const auto& [c, idx] : by_class) largest = std::max(largest, idx.size());

  std::vector<int64_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) out[i] = static_cast<int64_t>(i);
  Rng rng(options.seed);
  for (const auto& [c, idx] : by_class) {
    size_t need = largest - idx.size();
    while (need > 0) {
      // One full random pass over the class before any example comes again.
      std::vector<int64_t> perm = idx;
      rng.shuffle(perm);
      const size_t take = std::min(need, perm.size());
      out.insert(out.end(), perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(take));
      need -= take;
    }
  }
  return out;
}

}  // namespace crnn::data

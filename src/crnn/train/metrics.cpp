#include "crnn/train/metrics.h"

#include <cmath>
#include <limits>

namespace crnn::train {

ConfusionMatrix::ConfusionMatrix(int64_t classes)
    : classes_(classes), counts_(classes, std::vector<int64_t>(classes, 0)) {
  TORCH_CHECK(classes >= 1, "ConfusionMatrix: need at least one class");
}

void ConfusionMatrix::add(int64_t truth, int64_t predicted) {
  TORCH_CHECK(truth >= 0 && truth < classes_ && predicted >= 0 && predicted < classes_,
              "ConfusionMatrix: class index out of range (truth ", truth, ", predicted ", predicted,
              ", classes ", classes_, ")");
  ++counts_[truth][predicted];
}

void ConfusionMatrix::add(const torch::Tensor& truth, const torch::Tensor& predicted) {
  TORCH_CHECK(truth.numel() == predicted.numel(), "ConfusionMatrix: size mismatch");
  auto t = truth.to(torch::kLong).contiguous().cpu();
  auto p = predicted.to(torch::kLong).contiguous().cpu();
  for (int64_t i = 0; i < t.numel(); ++i) add(t.data_ptr<int64_t>()[i], p.data_ptr<int64_t>()[i]);
}

void ConfusionMatrix::add(const std::vector<std::vector<int64_t>>& counts) {
  // All checked before any is added: a refused matrix leaves this one as it was.
  TORCH_CHECK(static_cast<int64_t>(counts.size()) == classes_, "ConfusionMatrix: ", counts.size(),
              " rows of counts for ", classes_, " classes");
  for (int64_t t = 0; t < classes_; ++t) {
    TORCH_CHECK(static_cast<int64_t>(counts[t].size()) == classes_, "ConfusionMatrix: row ", t, " has ",
                counts[t].size(), " counts for ", classes_, " classes");
    for (int64_t p = 0; p < classes_; ++p)
      TORCH_CHECK(counts[t][p] >= 0, "ConfusionMatrix: negative count at [", t, "][", p, "]");
  }
  for (int64_t t = 0; t < classes_; ++t)
    for (int64_t p = 0; p < classes_; ++p) counts_[t][p] += counts[t][p];
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (auto& row : counts_)
    for (auto c : row) n += c;
  return n;
}

std::vector<double> ConfusionMatrix::per_class_recall() const {
  std::vector<double> r(classes_);
  for (int64_t c = 0; c < classes_; ++c) {
    int64_t n = 0;
    for (auto v : counts_[c]) n += v;
    r[c] = n == 0 ? std::numeric_limits<double>::quiet_NaN() : double(counts_[c][c]) / n;
  }
  return r;
}

double ConfusionMatrix::ua_recall() const {
  double sum = 0;
  int present = 0;
  for (double r : per_class_recall()) {
    if (std::isnan(r)) continue;
    sum += r;
    ++present;
  }
  return present ? sum / present : std::numeric_limits<double>::quiet_NaN();
}

double ConfusionMatrix::wa() const {
  int64_t correct = 0;
  for (int64_t c = 0; c < classes_; ++c) correct += counts_[c][c];
  const int64_t n = total();
  return n ? double(correct) / n : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace crnn::train

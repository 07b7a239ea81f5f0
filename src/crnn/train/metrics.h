#pragma once
/// \file metrics.h
/// Classification metrics of the paper's challenges (SPEC §3): UA recall (the
/// unweighted mean of per-class recalls, the official measure), WA (accuracy)
/// and the confusion matrix.
///
/// \code
///   crnn::train::ConfusionMatrix cm(3);
///   cm.add(/*truth=*/0, /*predicted=*/2);
///   double ua = cm.ua_recall();
/// \endcode

#include <torch/torch.h>

#include <string>
#include <vector>

namespace crnn::train {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes);
  void add(int64_t truth, int64_t predicted);
  /// Adds a batch: int64 tensors of equal size.
  void add(const torch::Tensor& truth, const torch::Tensor& predicted);
  /// Adds another matrix's counts ([truth][predicted], classes × classes):
  /// predictions pooled over several test sets (cross-validation folds).
  void add(const std::vector<std::vector<int64_t>>& counts);

  int64_t classes() const { return classes_; }
  int64_t total() const;
  /// counts[truth][predicted]
  const std::vector<std::vector<int64_t>>& counts() const { return counts_; }
  /// Recall of each class; a class with no examples gets NaN and is left out of UA.
  std::vector<double> per_class_recall() const;
  /// Unweighted average recall over the classes present.
  double ua_recall() const;
  /// Weighted accuracy: correct / total.
  double wa() const;

 private:
  int64_t classes_;
  std::vector<std::vector<int64_t>> counts_;
};

}  // namespace crnn::train

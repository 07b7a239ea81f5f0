#pragma once
/// \file window_conv.h
/// The standard convolutional layer in the windowing terms of paper §III-C:
/// f(w) = act(sum(W_i ⊙ w) + b_i), i = 1..n, over windows of r1 frames (shift
/// r2), then max pooling over p1 windows (shift p2) — the same interface and
/// length handling as ConvRecurrent, so the two are interchangeable.
///
/// `weight` is n × k × r1, the layout of torch::conv1d, so that this layer
/// equals act(conv1d(x^T, weight, bias, stride r2)) on full-length sequences.
///
/// \code
///   crnn::nn::WindowConv conv(crnn::nn::WindowConvOptions(26, 100).window(5).shift(2).pool(2).pool_shift(2));
///   auto y = conv(crnn::nn::PaddedSequence{torch::randn({8, 300, 26}), torch::full({8}, 300, torch::kLong)});
/// \endcode

#include <torch/torch.h>

#include "crnn/nn/options.h"
#include "crnn/nn/sequence.h"

namespace crnn::nn {

struct WindowConvOptions {
  WindowConvOptions(int64_t input_size, int64_t features)
      : input_size_(input_size), features_(features) {}
  TORCH_ARG(int64_t, input_size);   ///< k
  TORCH_ARG(int64_t, features);     ///< n
  TORCH_ARG(Activation, activation) = Activation::sigmoid;  ///< the paper's σ
  TORCH_ARG(int64_t, window) = 5;      ///< r1
  TORCH_ARG(int64_t, shift) = 2;       ///< r2
  TORCH_ARG(int64_t, pool) = 1;        ///< p1
  TORCH_ARG(int64_t, pool_shift) = 1;  ///< p2

 public:
  void validate() const;
};

class WindowConvImpl : public torch::nn::Module {
 public:
  WindowConvImpl(int64_t input_size, int64_t features)
      : WindowConvImpl(WindowConvOptions(input_size, features)) {}
  explicit WindowConvImpl(const WindowConvOptions& options);

  PaddedSequence forward(const PaddedSequence& x);

  /// PyTorch's Conv1d rule: weight kaiming-uniform(a = √5), bias U(±1/√(k·r1)).
  void reset_parameters();

  WindowConvOptions options;
  torch::Tensor weight;  ///< n × k × r1
  torch::Tensor bias;    ///< n
};
TORCH_MODULE(WindowConv);

}  // namespace crnn::nn

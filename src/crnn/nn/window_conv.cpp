#include "crnn/nn/window_conv.h"

#include "crnn/kernels/precision.h"

#include <cmath>

namespace crnn::nn {

void WindowConvOptions::validate() const {
  const char* who = "WindowConv";
  TORCH_CHECK(input_size() >= 1, who, ": input_size (k) must be >= 1, got ", input_size());
  TORCH_CHECK(features() >= 1 && features() <= kMaxLayerWidth, who, ": features (n) must be in 1..", kMaxLayerWidth,
              ", got ", features());
  check_window_options(who, window(), shift(), pool(), pool_shift());
}

WindowConvImpl::WindowConvImpl(const WindowConvOptions& options_) : options(options_) {
  options.validate();
  weight = register_parameter(
      "weight", torch::empty({options.features(), options.input_size(), options.window()}));
  bias = register_parameter("bias", torch::empty({options.features()}));
  reset_parameters();
}

void WindowConvImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(options.input_size() * options.window()));
  bias.uniform_(-bound, bound);
}

PaddedSequence WindowConvImpl::forward(const PaddedSequence& x) {
  check_padded(x, "WindowConv", this);
  TORCH_CHECK(x.features() == options.input_size(), "WindowConv: input has ", x.features(),
              " features per frame but the layer was built for input_size=",
              options.input_size());
  const int64_t b = x.batch_size(), r1 = options.window(), k = options.input_size();
  auto windows = extract_windows(x, r1, options.shift());  // B × W × r1 × k
  const int64_t w = windows.size(1);
  // sum(W_i ⊙ w) for all windows and filters as one GEMM: (B·W) × (r1·k) · (r1·k) × n.
  auto flat_w = weight.permute({0, 2, 1}).reshape({options.features(), r1 * k});
  auto z = kernels::linear(windows.reshape({b * w, r1 * k}), flat_w, bias);
  switch (options.activation()) {
    case Activation::relu: z = torch::relu(z); break;
    case Activation::tanh: z = torch::tanh(z); break;
    case Activation::sigmoid:
    default: z = torch::sigmoid(z); break;
  }
  auto counts = window_counts(x.lengths, r1, options.shift());
  PaddedSequence y{zero_padding(z.view({b, w, options.features()}), counts), counts};
  return max_pool_sequence(y, options.pool(), options.pool_shift());
}

}  // namespace crnn::nn

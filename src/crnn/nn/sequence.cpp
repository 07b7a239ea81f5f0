#include "crnn/nn/sequence.h"

namespace crnn::nn {

void check_window_options(const char* who, int64_t window, int64_t shift, int64_t pool,
                          int64_t pool_shift) {
  for (auto [name, v] : {std::pair{"window (r1)", window}, {"shift (r2)", shift}, {"pool (p1)", pool},
                         {"pool_shift (p2)", pool_shift}})
    TORCH_CHECK(v >= 1 && v <= kMaxWindowFrames, who, ": ", name, " must be in 1..", kMaxWindowFrames, ", got ", v);
}

void check_padded(const PaddedSequence& x, const char* who, const torch::nn::Module* module) {
  TORCH_CHECK(x.data.defined() && x.data.dim() == 3, who,
              ": expected data of shape B × T × features, got ",
              x.data.defined() ? x.data.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(x.data.size(0) >= 1 && x.data.size(1) >= 1, who, ": empty batch (data of shape ", x.data.sizes(),
              "); give at least one sequence of at least one frame");
  if (module) {
    const auto params = module->parameters();
    if (!params.empty())
      TORCH_CHECK(x.data.scalar_type() == params.front().scalar_type(), who, ": data is ", x.data.scalar_type(),
                  " but the module's parameters are ", params.front().scalar_type(),
                  "; convert one of them (data.to(...) or module->to(...))");
  }
  TORCH_CHECK(x.lengths.defined() && x.lengths.dim() == 1 &&
                  x.lengths.size(0) == x.data.size(0),
              who, ": expected one length per sequence (", x.data.size(0), ")");
  TORCH_CHECK(x.lengths.scalar_type() == torch::kLong, who, ": lengths must be int64");
  TORCH_CHECK(x.lengths.device().is_cpu(), who, ": lengths must be on the CPU");
  if (x.lengths.numel() > 0) {
    const int64_t lo = x.lengths.min().item<int64_t>();
    const int64_t hi = x.lengths.max().item<int64_t>();
    TORCH_CHECK(lo >= 1, who, ": every sequence needs at least one frame (got length ", lo, ")");
    TORCH_CHECK(hi <= x.data.size(1), who, ": a length (", hi, ") exceeds the padded size (",
                x.data.size(1), ")");
  }
}

torch::Tensor length_mask(const torch::Tensor& lengths, int64_t max_length,
                          const torch::Device& device) {
  auto steps = torch::arange(max_length, torch::TensorOptions().dtype(torch::kLong));
  return (steps.unsqueeze(0) < lengths.unsqueeze(1)).to(device);
}

torch::Tensor zero_padding(const torch::Tensor& data, const torch::Tensor& lengths) {
  // masked_fill rather than a multiply: padding may hold inf or NaN.
  auto mask = length_mask(lengths, data.size(1), data.device());
  return data.masked_fill(mask.logical_not().unsqueeze(-1), 0);
}

int64_t window_count(int64_t length, int64_t size, int64_t shift) {
  if (length < size) return 1;
  return (length - size) / shift + 1;
}

torch::Tensor window_counts(const torch::Tensor& lengths, int64_t size, int64_t shift) {
  auto l = lengths.contiguous();
  auto out = torch::empty_like(l);
  auto in_a = l.accessor<int64_t, 1>();
  auto out_a = out.accessor<int64_t, 1>();
  for (int64_t b = 0; b < l.size(0); ++b) out_a[b] = window_count(in_a[b], size, shift);
  return out;
}

torch::Tensor extract_windows(const PaddedSequence& x, int64_t size, int64_t shift) {
  TORCH_CHECK(size >= 1 && shift >= 1, "extract_windows: size and shift must be >= 1");
  const int64_t windows = window_counts(x.lengths, size, shift).max().item<int64_t>();
  // Enough frames for every window (zeros beyond each sequence's end).
  const int64_t needed = (windows - 1) * shift + size;
  auto data = zero_padding(x.data, x.lengths);
  if (data.size(1) < needed) {
    data = torch::constant_pad_nd(data, {0, 0, 0, needed - data.size(1)});
  }
  // unfold: B × W' × k × size, W' >= windows.
  auto w = data.unfold(1, size, shift).narrow(1, 0, windows);
  return w.transpose(2, 3);  // B × W × size × k
}

PaddedSequence max_pool_sequence(const PaddedSequence& x, int64_t size, int64_t shift) {
  TORCH_CHECK(size >= 1 && shift >= 1, "max_pool_sequence: size and shift must be >= 1");
  if (size == 1 && shift == 1) return x;
  auto out_lengths = window_counts(x.lengths, size, shift);
  const int64_t out_steps = out_lengths.max().item<int64_t>();
  const int64_t needed = (out_steps - 1) * shift + size;
  // Padding must never win a max: fill it with -inf, then pool.
  auto mask = length_mask(x.lengths, x.max_length(), x.data.device()).unsqueeze(-1);
  auto data = x.data.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  if (data.size(1) < needed) {
    data = torch::constant_pad_nd(data, {0, 0, 0, needed - data.size(1)},
                                  -std::numeric_limits<double>::infinity());
  }
  auto pooled = std::get<0>(data.unfold(1, size, shift).narrow(1, 0, out_steps).max(-1));
  pooled = zero_padding(pooled, out_lengths);
  return {pooled, out_lengths};
}

}  // namespace crnn::nn

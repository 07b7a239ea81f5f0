#include "crnn/audio/egemaps_smoothing.h"

namespace crnn::audio::egemaps {

torch::Tensor sma3(const torch::Tensor& raw, int64_t out_frames, bool nonzero_only) {
  TORCH_CHECK(raw.dim() == 2, "sma3: expected a frames x columns matrix, got shape ", raw.sizes());
  TORCH_CHECK(out_frames >= 0, "sma3: out_frames must be non-negative");
  const int64_t n = raw.size(0);
  if (out_frames == 0) return torch::zeros({0, raw.size(1)}, raw.options());
  TORCH_CHECK(n >= 1, "sma3: no input frames to smooth");
  // Indices k-1, k, k+1 clamped to [0, n-1]: edge frames repeat.
  auto k = torch::arange(out_frames, torch::kLong);
  auto prev = raw.index_select(0, (k - 1).clamp(0, n - 1));
  auto cur = raw.index_select(0, k.clamp(0, n - 1));
  auto next = raw.index_select(0, (k + 1).clamp(0, n - 1));
  auto sum = prev + cur + next;
  if (!nonzero_only) return sum / 3.0;
  auto count = (prev != 0).to(raw.scalar_type()) + (cur != 0).to(raw.scalar_type()) +
               (next != 0).to(raw.scalar_type());
  return torch::where(count > 0, sum / count.clamp_min(1.0), torch::zeros_like(sum));
}

}  // namespace crnn::audio::egemaps

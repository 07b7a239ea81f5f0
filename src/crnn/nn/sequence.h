#pragma once
/// \file sequence.h
/// Padded batches of variable-length sequences, and the windowing / pooling
/// arithmetic shared by every layer of the Convolutional Recurrent family
/// (SPEC §1, paper §III-A).
///
/// \code
///   crnn::nn::PaddedSequence x{torch::randn({2, 9, 26}), torch::tensor({9, 4})};
///   auto w = crnn::nn::extract_windows(x, /*size=*/5, /*shift=*/2);  // 2 × 3 × 5 × 26
///   auto n = crnn::nn::window_counts(x.lengths, 5, 2);               // {3, 1}
/// \endcode

#include <torch/torch.h>

namespace crnn::nn {

/// A batch of sequences: `data` is B × T × k (padding after each sequence's
/// end may hold anything: layers mask it), `lengths` is an int64 CPU tensor of B
/// valid frame counts, each in [1, T].
struct PaddedSequence {
  torch::Tensor data;
  torch::Tensor lengths;

  int64_t batch_size() const { return data.size(0); }
  int64_t max_length() const { return data.size(1); }
  int64_t features() const { return data.size(2); }
};

/// Largest width (features, hidden or dense units) a layer accepts: 64× the
/// paper's largest, far from int64 overflow of weight shapes and from an
/// allocation failure deep inside LibTorch.
constexpr int64_t kMaxLayerWidth = 65536;
/// Largest window, shift or pool in frames (about 3 hours at 10 ms).
constexpr int64_t kMaxWindowFrames = 1 << 20;

/// Checks the windowing and pooling options every windowed layer shares:
/// r1, r2, p1, p2 in 1..kMaxWindowFrames; `who` names the layer in the error.
void check_window_options(const char* who, int64_t window, int64_t shift, int64_t pool,
                          int64_t pool_shift);

/// Checks the invariants of a PaddedSequence; `who` names the caller in errors.
/// With `module`, also that x has its parameters' floating type (float64 input
/// to a float32 module would otherwise fail deep inside LibTorch's mm).
void check_padded(const PaddedSequence& x, const char* who, const torch::nn::Module* module = nullptr);

/// B × T boolean mask, true on valid frames.
torch::Tensor length_mask(const torch::Tensor& lengths, int64_t max_length,
                          const torch::Device& device = torch::kCPU);

/// Zeroes every frame at or after each sequence's length.
torch::Tensor zero_padding(const torch::Tensor& data, const torch::Tensor& lengths);

/// Windows of `size` frames every `shift` frames that fit in `length` frames:
/// floor((L − size) / shift) + 1; a sequence shorter than `size` still yields
/// one (zero-padded) window.
int64_t window_count(int64_t length, int64_t size, int64_t shift);
torch::Tensor window_counts(const torch::Tensor& lengths, int64_t size, int64_t shift);

/// Pooled length: max over `size` consecutive windows every `shift`; fewer than
/// `size` windows pool over what there is (one output).
inline int64_t pooled_count(int64_t windows, int64_t size, int64_t shift) {
  return window_count(windows, size, shift);
}

/// All windows of a padded batch: B × W × size × k, W = the largest window
/// count in the batch. Frames past a sequence's end are zero, so the one window
/// of a too-short sequence is zero-padded (SPEC §1); windows past a sequence's
/// window count (invalid, see `window_counts`) see only its tail and zeros.
torch::Tensor extract_windows(const PaddedSequence& x, int64_t size, int64_t shift);

/// Max pooling over `size` consecutive steps every `shift`, length-aware:
/// padding never wins a max, a sequence shorter than `size` pools over what it
/// has, outputs past each pooled length are zero.
PaddedSequence max_pool_sequence(const PaddedSequence& x, int64_t size, int64_t shift);

}  // namespace crnn::nn

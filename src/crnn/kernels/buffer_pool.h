#pragma once
/// \file buffer_pool.h
/// Large scratch tensors recycled between training steps.
///
/// A fresh multi-megabyte tensor comes from mmap (glibc's defaults), so every
/// step would page-fault and zero its ~100 MB of gates, states and gradients
/// again (measured: ~15 % of a fused step). Freed buffers wait here for the
/// next request of a similar size instead. Bounded (1 GiB pooled), so a change
/// of shapes cannot grow it without limit; requests under 1 MiB go to
/// LibTorch's allocator. A freed block stays reserved for its size: use the
/// pool for buffers every step asks for again, not for one-off sizes (bf16's
/// conversion buffers were, and took up to 52 MB more than fp32 for it;
/// docs/performance.md "Peak memory, fp32 and bf16").
///
/// \code
///   auto gates = crnn::kernels::pooled_empty({steps, rows, 4 * m}, proj.options());
///   // ... when `gates` and every view of it are gone, its memory is pooled
/// \endcode

#include <torch/torch.h>

namespace crnn::kernels {

/// An uninitialized tensor whose memory returns to the pool when freed.
torch::Tensor pooled_empty(c10::IntArrayRef sizes, const torch::TensorOptions& options);

/// pooled_empty, zero-filled.
torch::Tensor pooled_zeros(c10::IntArrayRef sizes, const torch::TensorOptions& options);

/// `t` converted to `dtype` into a pooled tensor (contiguous, same sizes).
torch::Tensor pooled_convert(const torch::Tensor& t, torch::ScalarType dtype);

}  // namespace crnn::kernels

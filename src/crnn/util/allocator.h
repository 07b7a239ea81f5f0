#pragma once
/// \file allocator.h
/// Keeps freed tensor memory in the process instead of returning it to the
/// kernel after every training step.
///
/// glibc serves every allocation above 32 MiB (less before its adaptive
/// threshold has grown) with its own mmap and unmaps it on free. A training
/// step allocates and frees the same few 10–120 MiB activation and gradient
/// tensors every batch, so each step page-faults and zero-fills them afresh:
/// 21 % of a speechocean762 baseline (BLSTM) worker's cycles were in the
/// kernel, mostly clear_page (perf, docs/performance.md "Allocator").
///
/// \code
///   crnn::keep_freed_tensor_memory();  // first thing in main()
/// \endcode
#include <cstddef>

namespace crnn {

/// Threshold used by keep_freed_tensor_memory() for both mmap and trimming.
inline constexpr std::size_t kKeptAllocationBytes = std::size_t{1} << 30;

/// Serves allocations up to 1 GiB from the heap and keeps up to 1 GiB of
/// freed memory there for reuse (glibc M_MMAP_THRESHOLD and
/// M_TRIM_THRESHOLD). Does nothing when the user tuned malloc through the
/// environment (GLIBC_TUNABLES naming glibc.malloc, MALLOC_MMAP_THRESHOLD_ or
/// MALLOC_TRIM_THRESHOLD_): their choice wins; CRNN_KEEP_FREED_MEMORY=0 keeps
/// glibc's defaults. Returns whether it changed the settings.
bool keep_freed_tensor_memory();

}  // namespace crnn

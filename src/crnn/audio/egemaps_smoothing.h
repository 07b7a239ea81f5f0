#pragma once
/// \file egemaps_smoothing.h
/// The eGeMAPS v02 smoothing of LLD contours (Eyben et al. 2016 §3: "all
/// LLDs are smoothed over time with a symmetric moving average filter 3
/// frames long"; for pitch, jitter, shimmer and the other voiced-only
/// descriptors only voiced, i.e. non-zero, values are averaged).
///
/// Output frame k is the mean of input frames k-1, k, k+1. Frames before the
/// first and after the last input frame repeat the edge frame. With
/// `nonzero_only` ("sma3nz") only non-zero inputs enter the mean, and a
/// window of zeros gives 0.
///
/// \code
///   auto smoothed = crnn::audio::egemaps::sma3(raw, raw.size(0) + 1, false);
/// \endcode

#include <torch/torch.h>

#include <cstdint>

namespace crnn::audio::egemaps {

/// raw: N x C (N >= 1). Returns out_frames x C; input frames past N - 1 are
/// taken as frame N - 1.
torch::Tensor sma3(const torch::Tensor& raw, int64_t out_frames, bool nonzero_only);

}  // namespace crnn::audio::egemaps

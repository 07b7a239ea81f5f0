#pragma once
/// \file flops.h
/// Analytic FLOP count of a SequenceClassifier (docs/performance.md): the
/// model's nominal matrix-multiply work under the composed definition, so that
/// an implementation that computes less (the fused path projects each frame
/// once instead of once per window position) is credited for speed, never for
/// extra FLOPs.
///
/// Counted: 2·m·n·k per GEMM (multiply and add), i.e.
/// - conv layer: per window 2·(r1·k)·n;
/// - CRNN layer: per window and direction r1 input projections 2·k·G·m, r1 − 1
///   recurrent products 2·m·G·m (h = 0 at a window's first step), with G = 4
///   gates (LSTM) or 1 (RNN); source=output adds r1 products 2·(D·m)·n;
/// - classifier (B)LSTM: per sequence and direction T products 2·k·4m and
///   T − 1 products 2·m·4m;
/// - Dense and class layers: 2·in·out per step.
/// Not counted: elementwise work (nonlinearities, peepholes, pooling, softmax,
/// Adam). A training step counts 3× the forward (backward = 2 GEMMs per
/// forward GEMM: input and weight gradients).
///
/// \code
///   auto o = crnn::nn::SequenceClassifierOptions::preset("emotion-clstm", 8);
///   double f = crnn::nn::forward_flops(o, /*batch=*/32, /*frames=*/300);
/// \endcode

#include <cstdint>
#include <string>
#include <vector>

#include "crnn/nn/sequence_classifier.h"

namespace crnn::nn {

/// Forward GEMM FLOPs of one batch of `batch` full-length sequences of `frames` frames.
double forward_flops(const SequenceClassifierOptions& options, int64_t batch, int64_t frames);

/// Parameters of one part of a model, named by the config key that sizes it.
struct ParameterPart {
  std::string key;   ///< "model.front_end.0", "model.recurrent_size", "model.dense_size"
  double count = 0;  ///< parameters (double: absurd configs overflow nothing)
};

/// The model's parameters per part, counted from the options without building
/// it — so that a config asking for terabytes is refused naming its key
/// (train/trainer.cpp) instead of failing inside LibTorch's allocator.
std::vector<ParameterPart> parameter_parts(const SequenceClassifierOptions& options);

/// Activation memory of one part of a training step, named by the config key
/// that sizes it.
struct MemoryPart {
  std::string key;   ///< "model.front_end.0", "model.recurrent_size", "model.dense_size"
  double bytes = 0;  ///< (double: absurd configs overflow nothing)
};

/// The activation memory one training step (forward kept for backward, plus
/// the backward's own buffers) takes per part, in fp32, for `batch` sequences
/// padded to `frames` frames — counted from the options without building
/// anything, as the fused path allocates: per CRNN layer and direction the
/// projections and their gradient, every step's gates, h and c of all windows
/// (the step count is the window: a window of 10⁶ frames is 10⁶ steps for
/// every sequence), per conv layer the extracted windows and outputs, per
/// (B)LSTM the same over the pooled sequence, and the Dense and class
/// layers' outputs. An estimate (no allocator slack, no LibTorch temporaries):
/// tests/nn/flops_test.cpp compares it with the measured peak.
std::vector<MemoryPart> activation_parts(const SequenceClassifierOptions& options, int64_t batch, int64_t frames);

/// Forward + backward (3× forward), the work of one training step.
inline double training_flops(const SequenceClassifierOptions& options, int64_t batch,
                             int64_t frames) {
  return 3.0 * forward_flops(options, batch, frames);
}

}  // namespace crnn::nn

#pragma once
/// \file conv_recurrent.h
/// The Convolutional Recurrent layer (paper §III-C): a recurrent network f(w)
/// runs over every window of r1 frames (shift r2) with the same parameters for
/// all windows; each window becomes n features; max pooling over p1 windows
/// (shift p2) follows. Kinds: CRNN (`rnn`, eqs. 1–2), CLSTM (`lstm`, eqs. 3–7),
/// Extended CLSTM (`lstm` + `extended`), CBLSTM (`blstm`, eqs. 8–9).
///
/// \code
///   using namespace crnn::nn;
///   // The paper's emotion CLSTM: r1 = 5, r2 = 2, n = 100, c_5 of each window, pool 2/2.
///   ConvRecurrent clstm(ConvRecurrentOptions(26, 100)
///                           .kind(RecurrentKind::lstm).source(FeatureSource::cell)
///                           .reduce(WindowReduce::last).window(5).shift(2).pool(2).pool_shift(2));
///   PaddedSequence x{torch::randn({8, 300, 26}), torch::full({8}, 300, torch::kLong)};
///   PaddedSequence y = clstm(x);   // 8 × 74 × 100; y.lengths = 74 each
/// \endcode

#include <torch/torch.h>

#include "crnn/nn/options.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/sequence.h"

namespace crnn::nn {

struct ConvRecurrentOptions {
  ConvRecurrentOptions(int64_t input_size, int64_t features)
      : input_size_(input_size), features_(features) {}
  /// Features per input frame (k).
  TORCH_ARG(int64_t, input_size);
  /// Features per window (n).
  TORCH_ARG(int64_t, features);
  /// Recurrent units per direction (m). 0 = derived: n for rnn/lstm and for
  /// source=output, n/2 for blstm with source hidden or cell (n = 2m: both
  /// directions' states side by side). Free only with source=output.
  TORCH_ARG(int64_t, hidden_size) = 0;
  TORCH_ARG(RecurrentKind, kind) = RecurrentKind::lstm;
  /// Position-specific input weights (Extended CLSTM); lstm and blstm only.
  TORCH_ARG(bool, extended) = false;
  /// hidden (h), cell (c; LSTM kinds), or output (y = affine map of the states).
  TORCH_ARG(FeatureSource, source) = FeatureSource::hidden;
  /// With source=output: which states the affine map reads. hidden = eq. 2 /
  /// eq. 8 (blstm), cell = eq. 9 (LSTM kinds).
  TORCH_ARG(FeatureSource, combine) = FeatureSource::hidden;
  TORCH_ARG(WindowReduce, reduce) = WindowReduce::last;
  /// Window size r1 (frames).
  TORCH_ARG(int64_t, window) = 5;
  /// Window shift r2 (frames).
  TORCH_ARG(int64_t, shift) = 2;
  /// Pooling size p1 (windows); 1 = no pooling.
  TORCH_ARG(int64_t, pool) = 1;
  /// Pooling shift p2 (windows).
  TORCH_ARG(int64_t, pool_shift) = 1;
  /// Diagonal peepholes in the LSTM kinds.
  TORCH_ARG(bool, peepholes) = true;
  /// fused (default): one autograd node per direction with hand-written CPU
  /// kernels (crnn/kernels/fused_lstm.h); composed: windows unfolded and the
  /// recurrence built from plain tensor ops (the reference). Same parameters.
  TORCH_ARG(Implementation, impl) = default_implementation();

 public:
  /// Recurrent units per direction after applying the defaults above.
  int64_t resolved_hidden_size() const;
  /// Throws c10::Error naming the offending option if the combination is invalid.
  void validate() const;
};

class ConvRecurrentImpl : public torch::nn::Module {
 public:
  ConvRecurrentImpl(int64_t input_size, int64_t features)
      : ConvRecurrentImpl(ConvRecurrentOptions(input_size, features)) {}
  explicit ConvRecurrentImpl(const ConvRecurrentOptions& options);

  /// B × T × k with lengths → B × T'' × n with lengths T'' = pooled window counts.
  PaddedSequence forward(const PaddedSequence& x);

  /// Per-window features before pooling: (B·W) windows of r1 × k → (B·W) × n.
  torch::Tensor window_features(const torch::Tensor& windows);

  /// The forward of each implementation, whatever `options.impl` says.
  PaddedSequence forward_composed(const PaddedSequence& x);
  PaddedSequence forward_fused(const PaddedSequence& x);

  /// U(−1/√m, 1/√m) for the recurrent parameters (PyTorch's RNN rule) and
  /// PyTorch's Linear rule for the output map; seed with torch::manual_seed.
  void reset_parameters();

  ConvRecurrentOptions options;
  PeepholeLSTM lstm{nullptr};       ///< lstm / blstm kinds
  torch::Tensor rnn_weight_ih;      ///< rnn kind: m × k
  torch::Tensor rnn_weight_hh;      ///< rnn kind: m × m
  torch::Tensor rnn_bias;           ///< rnn kind: m
  torch::nn::Linear output{nullptr};  ///< source=output: (directions·m) → n
};
TORCH_MODULE(ConvRecurrent);

}  // namespace crnn::nn

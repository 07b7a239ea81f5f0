#pragma once
/// \file sequence_classifier.h
/// The paper's sequence classifiers (§IV, SPEC §2): a front-end stack of
/// Convolutional Recurrent or standard convolutional layers → a peephole
/// (B)LSTM → per-step Dense(ReLU) → per-step softmax → the average of the
/// softmax outputs over the last N steps (or all steps) is the prediction.
///
/// \code
///   using namespace crnn::nn;
///   SequenceClassifier model(SequenceClassifierOptions::preset("emotion-clstm", /*classes=*/8));
///   PaddedSequence x{torch::randn({4, 300, 26}), torch::tensor({300, 250, 120, 40})};
///   torch::Tensor log_p = model(x);                          // 4 × 8, log of averaged probabilities
///   torch::Tensor labels = torch::tensor({0, 3, 7, 1});
///   torch::Tensor loss = torch::nll_loss(log_p, labels);     // −log(mean_t softmax_t)[label]
/// \endcode

#include <torch/torch.h>

#include <string>
#include <variant>
#include <vector>

#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/options.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/window_conv.h"

namespace crnn::nn {

/// One front-end layer: a standard convolutional layer (`convolutional`) or a
/// Convolutional Recurrent layer of `kind`. Its input size is the previous
/// layer's output size, filled in by the classifier. The defaults are the
/// paper's emotion front-end layer (r = 5, shift 2, n = 100, max-pool 2/2);
/// ConvRecurrentOptions and WindowConvOptions, the single layers, default to
/// no pooling (1/1) instead.
struct FrontEndLayerOptions {
  /// A standard convolutional layer (WindowConv) instead of a recurrent one.
  TORCH_ARG(bool, convolutional) = false;
  /// rnn, lstm or blstm (CBLSTM); ignored when `convolutional`.
  TORCH_ARG(RecurrentKind, kind) = RecurrentKind::lstm;
  /// Output features per window (the paper's n).
  TORCH_ARG(int64_t, features) = 100;
  /// Recurrent units per direction; 0 = derived (docs/layers.md).
  TORCH_ARG(int64_t, hidden_size) = 0;
  /// Position-specific input weights (Extended CLSTM); lstm and blstm only.
  TORCH_ARG(bool, extended) = false;
  /// hidden (h), cell (c; LSTM kinds), or output (y = affine map of the states).
  TORCH_ARG(FeatureSource, source) = FeatureSource::hidden;
  /// With source=output: which states the affine map reads (ConvRecurrentOptions::combine).
  TORCH_ARG(FeatureSource, combine) = FeatureSource::hidden;
  /// Reduction over a window's steps: last, mean or max (Table IV).
  TORCH_ARG(WindowReduce, reduce) = WindowReduce::last;
  /// Nonlinearity of a standard convolutional layer's output.
  TORCH_ARG(Activation, activation) = Activation::sigmoid;
  /// Window size r1 (frames).
  TORCH_ARG(int64_t, window) = 5;
  /// Window shift r2 (frames).
  TORCH_ARG(int64_t, shift) = 2;
  /// Max-pooling over windows: size p1 and shift p2 (1 and 1 = none).
  TORCH_ARG(int64_t, pool) = 2;
  TORCH_ARG(int64_t, pool_shift) = 2;
  /// Diagonal peepholes in the LSTM kinds.
  TORCH_ARG(bool, peepholes) = true;
  /// Implementation of a recurrent layer (see ConvRecurrentOptions::impl).
  TORCH_ARG(Implementation, impl) = default_implementation();

 public:
  /// "conv", "rnn", "lstm", "blstm" (the config's `type`).
  std::string type_name() const;
  ConvRecurrentOptions recurrent_options(int64_t input_size) const;
  WindowConvOptions conv_options(int64_t input_size) const;
};

struct SequenceClassifierOptions {
  SequenceClassifierOptions(int64_t input_size, int64_t num_classes)
      : input_size_(input_size), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, input_size);
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(std::vector<FrontEndLayerOptions>, front_end) = {};
  /// Units per direction of the classifier's (B)LSTM.
  TORCH_ARG(int64_t, recurrent_size) = 256;
  /// BLSTM (hidden states of both directions fed on) instead of LSTM.
  TORCH_ARG(bool, bidirectional) = false;
  TORCH_ARG(bool, peepholes) = true;
  /// Units of the per-step Dense(ReLU) layer.
  TORCH_ARG(int64_t, dense_size) = 400;
  /// Average the softmax outputs over the last N steps; 0 = all steps.
  TORCH_ARG(int64_t, average_last) = 4;
  /// Implementation of the classifier's (B)LSTM (front-end layers carry their own).
  TORCH_ARG(Implementation, impl) = default_implementation();

 public:
  /// The paper's setups (SPEC §2) with input_size features and num_classes:
  /// emotion-{baseline,conv,clstm,eclstm}: [0|2 layers r1 5, r2 2, n 100, p 2/2]
  ///   → LSTM 256 → Dense 400 → softmax, averaged over the last 4 steps;
  ///   the CLSTM layers take c at the last step of each window.
  /// agender-{baseline,conv,clstm,cblstm}: [0|1 such layer] → BLSTM 2×256 →
  ///   Dense 400 → softmax averaged over all steps; CLSTM: max over c;
  ///   CBLSTM: m = 100, eq. 9, max over y.
  /// Aliases: "emotion" = emotion-clstm, "agender" = agender-cblstm.
  static SequenceClassifierOptions preset(const std::string& name, int64_t num_classes,
                                          int64_t input_size = 26);
  static std::vector<std::string> preset_names();

  void validate() const;
};

class SequenceClassifierImpl : public torch::nn::Module {
 public:
  explicit SequenceClassifierImpl(const SequenceClassifierOptions& options);

  /// Log of the averaged class probabilities, B × C: the loss is
  /// torch::nll_loss(forward(x), labels) and the prediction its argmax.
  torch::Tensor forward(const PaddedSequence& x);

  /// Per-step log-softmax outputs B × T × C with their lengths.
  PaddedSequence step_log_probs(const PaddedSequence& x);

  /// The front-end stack alone.
  PaddedSequence front_end_forward(const PaddedSequence& x);

  /// Re-draws every parameter (see each layer's rule); seed with torch::manual_seed.
  void reset_parameters();

  SequenceClassifierOptions options;
  std::vector<std::variant<ConvRecurrent, WindowConv>> front_end;
  PeepholeLSTM recurrent{nullptr};
  torch::nn::Linear dense{nullptr};
  torch::nn::Linear classes{nullptr};
};
TORCH_MODULE(SequenceClassifier);

/// log(mean over the averaged steps of exp(log_probs)), computed stably:
/// logsumexp over the last `last` valid steps (all if 0) minus log(count).
torch::Tensor average_log_probs(const PaddedSequence& log_probs, int64_t last);

}  // namespace crnn::nn

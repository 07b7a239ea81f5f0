#pragma once
/// \file peephole_lstm.h
/// The LSTM of the paper (eqs. 3–7, Gers et al. 2003): gates see the cell state
/// through diagonal peephole weights.
///
///   i_t = σ(W_xi x_t + W_hi h_{t−1} + w_ci ⊙ c_{t−1} + b_i)
///   f_t = σ(W_xf x_t + W_hf h_{t−1} + w_cf ⊙ c_{t−1} + b_f)
///   c_t = f_t ⊙ c_{t−1} + i_t ⊙ tanh(W_xc x_t + W_hc h_{t−1} + b_c)
///   o_t = σ(W_xo x_t + W_ho h_{t−1} + w_co ⊙ c_t + b_o)
///   h_t = o_t ⊙ tanh(c_t)
///
/// Gate blocks are stored in PyTorch's order (i, f, c, o) so that, with
/// peepholes disabled, `weight_ih`/`weight_hh`/`bias` equal torch::nn::LSTM's
/// `weight_ih_l0`/`weight_hh_l0`/`bias_ih_l0 + bias_hh_l0`.
///
/// The layer is length-aware: outputs past a sequence's end are zero, padding
/// never reaches a real frame's output or gradient, and the backward direction
/// starts at each sequence's own last frame.
///
/// \code
///   crnn::nn::PeepholeLSTM lstm(crnn::nn::PeepholeLSTMOptions(26, 256).bidirectional(true));
///   crnn::nn::PaddedSequence x{torch::randn({4, 100, 26}), torch::tensor({100, 80, 60, 7})};
///   auto y = lstm(x);   // y.data: 4 × 100 × 512 (forward ‖ backward), y.lengths == x.lengths
/// \endcode

#include <torch/torch.h>

#include "crnn/nn/options.h"
#include "crnn/nn/sequence.h"

namespace crnn::nn {

struct PeepholeLSTMOptions {
  PeepholeLSTMOptions(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  /// Features per input frame (k).
  TORCH_ARG(int64_t, input_size);
  /// Units per direction (m).
  TORCH_ARG(int64_t, hidden_size);
  /// Also run a backward LSTM; outputs are [forward ‖ backward].
  TORCH_ARG(bool, bidirectional) = false;
  /// Diagonal peephole weights w_ci, w_cf, w_co (false: a plain LSTM).
  TORCH_ARG(bool, peepholes) = true;
  /// > 0: a separate copy of the input matrices W_x{i,f,c,o} for each of the
  /// first `positions` steps (Extended CLSTM); inputs must then have exactly
  /// that many steps. Recurrent and peephole weights stay shared.
  TORCH_ARG(int64_t, positions) = 0;
  /// fused: the hand-written CPU kernels (crnn/kernels/fused_lstm.h);
  /// composed: plain tensor ops (the reference). Same parameters either way.
  TORCH_ARG(Implementation, impl) = default_implementation();
};

/// Hidden and cell states of every step: N × T × (directions · m) each,
/// forward direction first.
struct LSTMStates {
  torch::Tensor hidden;
  torch::Tensor cell;
};

/// Parameters of one direction (views into the module's registered tensors).
struct LSTMDirectionParams {
  torch::Tensor weight_ih;  ///< 4m × k, or P × 4m × k when position-specific
  torch::Tensor weight_hh;  ///< 4m × m
  torch::Tensor bias;       ///< 4m
  torch::Tensor peephole_i, peephole_f, peephole_o;  ///< m each; undefined without peepholes
};

/// Runs one direction over full-length inputs x (N × T × k) from zero state,
/// composed of plain tensor ops (the reference path). Returns {h, c}, N × T × m.
std::pair<torch::Tensor, torch::Tensor> lstm_direction_composed(const torch::Tensor& x,
                                                                const LSTMDirectionParams& p);

class PeepholeLSTMImpl : public torch::nn::Module {
 public:
  PeepholeLSTMImpl(int64_t input_size, int64_t hidden_size)
      : PeepholeLSTMImpl(PeepholeLSTMOptions(input_size, hidden_size)) {}
  explicit PeepholeLSTMImpl(const PeepholeLSTMOptions& options);

  /// Hidden states of the padded batch, [forward ‖ backward]; lengths unchanged.
  PaddedSequence forward(const PaddedSequence& x);

  /// Hidden and cell states of every step. Without `lengths` every sequence is
  /// taken as full length (the fast path for fixed-size windows).
  LSTMStates forward_states(const torch::Tensor& x, const torch::Tensor& lengths = {});
  /// forward_states with a given implementation, whatever `options.impl` says.
  LSTMStates forward_states_composed(const torch::Tensor& x, const torch::Tensor& lengths = {});
  LSTMStates forward_states_fused(const torch::Tensor& x, const torch::Tensor& lengths = {});

  /// Draws every parameter from U(−1/√m, 1/√m) (PyTorch's LSTM rule, applied to
  /// peepholes too) from LibTorch's global generator: seed with torch::manual_seed.
  void reset_parameters();

  int64_t output_size() const {
    return options.hidden_size() * (options.bidirectional() ? 2 : 1);
  }
  LSTMDirectionParams direction(int d) const;

  PeepholeLSTMOptions options;

 private:
  void check_input(const torch::Tensor& x, const torch::Tensor& lengths) const;
  std::vector<LSTMDirectionParams> directions_;
};
TORCH_MODULE(PeepholeLSTM);

}  // namespace crnn::nn

#pragma once
/// \file fused_lstm.h
/// Fused CPU forward and backward of the recurrences used by the CRNN layers
/// and the classifiers' (B)LSTM: the peephole LSTM (paper eqs. 3–7) and the
/// simple sigmoid RNN (eq. 1), run over many short sequences at once.
///
/// The caller supplies the input projections W_x·x + b once per *source row*
/// (for the CRNN layers: once per frame, shared by every window that contains
/// it) and an index that says which row feeds step t of sequence n. The scan
/// then runs one GEMM per step across all sequences (W_h·h, skipped at the
/// first step where h = 0), fuses gate nonlinearities, peepholes and the state
/// update into a single pass per step, optionally reduces the states over the
/// steps (max / mean / one step) without returning the sequences, and keeps
/// only what the hand-written backward needs (gate activations, h, c).
///
/// \code
///   // 8 windows of 5 frames over 20 frames of input projections (rows × 4m):
///   auto proj = torch::addmm(bias, frames, weight_ih.t());
///   auto index = ...;   // 5 × 8 int64, row of `proj` for step t of window n
///   auto out = crnn::kernels::recurrent_scan(proj, index, weight_hh, peepholes,
///                                            {crnn::kernels::Cell::lstm, crnn::kernels::Reduce::max,
///                                             /*reduce_cell=*/true});
///   // out[0]: 8 × m, max over the 5 steps of c_t of every window
/// \endcode

#include <torch/torch.h>

namespace crnn::kernels {

/// Recurrent cell of the scan.
enum class Cell { lstm, rnn };
/// What the scan returns: every step's states, or one vector per sequence.
enum class Reduce { none, max, mean, step };

struct ScanOptions {
  Cell cell = Cell::lstm;
  Reduce reduce = Reduce::none;
  /// Reduce the cell state c instead of the hidden state h (LSTM only).
  bool reduce_cell = false;
  /// With Reduce::step: which step's state is returned.
  int64_t step = 0;
  /// Run the recurrent products (W_h·h forward, da·W_h and dW_h backward) with
  /// bf16 operands and fp32 accumulation (float scans only; see precision.h).
  /// The states, gates and their gradients stay fp32.
  bool bf16 = false;
};

/// Whether a scan over this many sequences runs parallel row blocks (each with
/// single-threaded GEMMs) rather than one block with the BLAS's own threads.
/// Callers with independent small scans (the two directions of a BLSTM over a
/// batch) can run those concurrently instead.
bool scan_uses_row_blocks(int64_t sequences);

/// Runs the recurrence over T steps of N sequences from zero state.
///
/// - `proj`: R × G·m input projections including the bias (G = 4 gates in the
///   order i, f, c, o for the LSTM, G = 1 for the RNN); float or double.
/// - `index`: T × N int64 (CPU), each in [0, R): the row of `proj` feeding
///   step t of sequence n. Rows may be shared (overlapping windows).
/// - `weight_hh`: G·m × m.
/// - `peepholes`: 3 × m (w_ci, w_cf, w_co) for the LSTM; zeros disable them.
///   Ignored (may be undefined) for the RNN.
///
/// Returns, with Reduce::none, {h, c} of every step (T × N × m each; c is
/// undefined for the RNN); otherwise {reduced state}, N × m. Differentiable
/// with respect to proj, weight_hh and peepholes (hand-written backward).
std::vector<torch::Tensor> recurrent_scan(const torch::Tensor& proj, const torch::Tensor& index,
                                          const torch::Tensor& weight_hh,
                                          const torch::Tensor& peepholes,
                                          const ScanOptions& options);

}  // namespace crnn::kernels

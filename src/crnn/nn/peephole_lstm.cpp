#include "crnn/nn/peephole_lstm.h"

#include <cmath>

#include "crnn/kernels/fused_lstm.h"
#include "crnn/kernels/precision.h"
#include "crnn/util/threads.h"


namespace crnn::nn {
namespace {

/// For each sequence, the index map that reverses its first L_b frames and
/// keeps the padding in place; applying it twice is the identity.
torch::Tensor reverse_within_lengths(const torch::Tensor& lengths, int64_t steps) {
  auto t = torch::arange(steps, torch::kLong).unsqueeze(0);  // 1 × T
  auto l = lengths.unsqueeze(1);                             // B × 1
  return torch::where(t < l, l - 1 - t, t);                  // B × T
}

torch::Tensor gather_steps(const torch::Tensor& x, const torch::Tensor& index) {
  auto idx = index.to(x.device()).unsqueeze(-1).expand({x.size(0), x.size(1), x.size(2)});
  return x.gather(1, idx);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> lstm_direction_composed(const torch::Tensor& x,
                                                                const LSTMDirectionParams& p) {
  const int64_t n = x.size(0), steps = x.size(1);
  const int64_t m = p.weight_hh.size(1);
  torch::Tensor xp;  // N × T × 4m: input projections of every step at once
  if (p.weight_ih.dim() == 3) {
    TORCH_CHECK(p.weight_ih.size(0) == steps, "PeepholeLSTM: position-specific weights for ",
                p.weight_ih.size(0), " positions, but the input has ", steps, " steps");
    xp = torch::einsum("ntk,tgk->ntg", {x, p.weight_ih}) + p.bias;
  } else {
    xp = torch::matmul(x, p.weight_ih.t()) + p.bias;
  }
  const bool peep = p.peephole_i.defined();
  auto h = torch::zeros({n, m}, x.options());
  auto c = torch::zeros({n, m}, x.options());
  std::vector<torch::Tensor> hs, cs;
  hs.reserve(steps);
  cs.reserve(steps);
  // unbind, not select per step: select's backward materializes a zero tensor
  // the size of all steps for every step (quadratic in T); unbind's is one stack.
  const auto xp_steps = xp.unbind(1);
  for (int64_t t = 0; t < steps; ++t) {
    auto gates = xp_steps[t];
    if (t > 0) gates = gates + h.mm(p.weight_hh.t());  // h_0 = 0: skip the product
    auto chunks = gates.chunk(4, 1);
    auto gi = chunks[0], gf = chunks[1], gc = chunks[2], go = chunks[3];
    if (peep) {
      gi = gi + p.peephole_i * c;
      gf = gf + p.peephole_f * c;
    }
    c = torch::sigmoid(gf) * c + torch::sigmoid(gi) * torch::tanh(gc);
    if (peep) go = go + p.peephole_o * c;  // the output gate peeks at the new cell
    h = torch::sigmoid(go) * torch::tanh(c);
    hs.push_back(h);
    cs.push_back(c);
  }
  return {torch::stack(hs, 1), torch::stack(cs, 1)};
}

PeepholeLSTMImpl::PeepholeLSTMImpl(const PeepholeLSTMOptions& options_) : options(options_) {
  const int64_t k = options.input_size(), m = options.hidden_size();
  TORCH_CHECK(k >= 1, "PeepholeLSTM: input_size must be >= 1, got ", k);
  TORCH_CHECK(m >= 1, "PeepholeLSTM: hidden_size must be >= 1, got ", m);
  TORCH_CHECK(options.positions() >= 0, "PeepholeLSTM: positions must be >= 0, got ",
              options.positions());
  const int dirs = options.bidirectional() ? 2 : 1;
  for (int d = 0; d < dirs; ++d) {
    const std::string sfx = d == 0 ? "" : "_reverse";
    LSTMDirectionParams p;
    if (options.positions() > 0) {
      p.weight_ih = register_parameter("weight_ih" + sfx,
                                       torch::empty({options.positions(), 4 * m, k}));
    } else {
      p.weight_ih = register_parameter("weight_ih" + sfx, torch::empty({4 * m, k}));
    }
    p.weight_hh = register_parameter("weight_hh" + sfx, torch::empty({4 * m, m}));
    p.bias = register_parameter("bias" + sfx, torch::empty({4 * m}));
    if (options.peepholes()) {
      p.peephole_i = register_parameter("peephole_i" + sfx, torch::empty({m}));
      p.peephole_f = register_parameter("peephole_f" + sfx, torch::empty({m}));
      p.peephole_o = register_parameter("peephole_o" + sfx, torch::empty({m}));
    }
    directions_.push_back(p);
  }
  reset_parameters();
}

void PeepholeLSTMImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(options.hidden_size()));
  for (auto& p : parameters()) p.uniform_(-bound, bound);
}

LSTMDirectionParams PeepholeLSTMImpl::direction(int d) const {
  TORCH_CHECK(d >= 0 && d < static_cast<int>(directions_.size()),
              "PeepholeLSTM: no direction ", d);
  return directions_[d];
}

LSTMStates PeepholeLSTMImpl::forward_states(const torch::Tensor& x,
                                            const torch::Tensor& lengths) {
  if (options.impl() == Implementation::fused && x.device().is_cpu() &&
      (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble)) {
    return forward_states_fused(x, lengths);
  }
  return forward_states_composed(x, lengths);
}

void PeepholeLSTMImpl::check_input(const torch::Tensor& x, const torch::Tensor& lengths) const {
  TORCH_CHECK(x.dim() == 3, "PeepholeLSTM: expected input N × T × features, got ", x.sizes());
  TORCH_CHECK(x.size(2) == options.input_size(), "PeepholeLSTM: input has ", x.size(2),
              " features per frame but the layer was built for input_size=",
              options.input_size());
  TORCH_CHECK(options.positions() == 0 || x.size(1) == options.positions(),
              "PeepholeLSTM: position-specific input weights need exactly ",
              options.positions(), " steps, got ", x.size(1));
  const bool ragged = lengths.defined();
  TORCH_CHECK(!ragged || options.positions() == 0 ||
                  (lengths == x.size(1)).all().item<bool>(),
              "PeepholeLSTM: position-specific input weights need full-length sequences");
}

LSTMStates PeepholeLSTMImpl::forward_states_composed(const torch::Tensor& x,
                                                     const torch::Tensor& lengths) {
  check_input(x, lengths);
  const bool ragged = lengths.defined();
  auto input = ragged ? zero_padding(x, lengths) : x;

  auto [hf, cf] = lstm_direction_composed(input, directions_[0]);
  if (!options.bidirectional()) {
    if (ragged) {
      hf = zero_padding(hf, lengths);
      cf = zero_padding(cf, lengths);
    }
    return {hf, cf};
  }
  torch::Tensor hb, cb;
  if (ragged) {
    // Reverse each sequence within its own length so that the backward pass
    // starts at that sequence's last real frame, then map the outputs back.
    auto rev = reverse_within_lengths(lengths, x.size(1));
    std::tie(hb, cb) = lstm_direction_composed(gather_steps(input, rev), directions_[1]);
    hb = gather_steps(hb, rev);
    cb = gather_steps(cb, rev);
  } else {
    auto back = directions_[1];
    // Step t of the reversed pass reads frame T−1−t: its position-specific
    // input weights are those of that frame's position.
    if (back.weight_ih.dim() == 3) back.weight_ih = back.weight_ih.flip(0);
    std::tie(hb, cb) = lstm_direction_composed(input.flip(1), back);
    hb = hb.flip(1);
    cb = cb.flip(1);
  }
  auto h = torch::cat({hf, hb}, 2);
  auto c = torch::cat({cf, cb}, 2);
  if (ragged) {
    h = zero_padding(h, lengths);
    c = zero_padding(c, lengths);
  }
  return {h, c};
}

LSTMStates PeepholeLSTMImpl::forward_states_fused(const torch::Tensor& x,
                                                  const torch::Tensor& lengths) {
  check_input(x, lengths);
  const bool ragged = lengths.defined();
  auto input = ragged ? zero_padding(x, lengths) : x;
  const int64_t n = x.size(0), steps = x.size(1), k = x.size(2);
  const int dirs = options.bidirectional() ? 2 : 1;
  // Source step of each (step, sequence) for both directions: the backward
  // direction reads each sequence reversed within its own length (padding
  // stays behind it), so that it starts at the sequence's last real frame.
  auto t = torch::arange(steps, torch::kLong).unsqueeze(1);  // T × 1
  torch::Tensor rev = ragged ? torch::where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t,
                                            t.expand({steps, n}))
                             : (steps - 1 - t).expand({steps, n});  // T × N
  struct Scan {
    torch::Tensor proj, index, peep;
    std::vector<torch::Tensor> out;
  };
  std::vector<Scan> scans(dirs);
  for (int d = 0; d < dirs; ++d) {
    const auto& p = directions_[d];
    torch::Tensor source = d == 0 ? t.expand({steps, n}) : rev;  // T × N frame per step
    auto seq = torch::arange(n, torch::kLong).unsqueeze(0);     // 1 × N
    auto& s = scans[d];
    if (p.weight_ih.dim() == 3) {
      // Position-specific weights: project frame s with the copy for position s,
      // time-major rows (s, n).
      s.proj = kernels::baddbmm(p.bias, input.transpose(0, 1), p.weight_ih.transpose(1, 2))
                   .reshape({steps * n, -1});
      s.index = (source * n + seq).contiguous();
    } else {
      // All input projections in one GEMM.
      s.proj = kernels::linear(input.reshape({n * steps, k}), p.weight_ih, p.bias);
      s.index = (seq * steps + source).contiguous();
    }
    if (p.peephole_i.defined()) s.peep = torch::stack({p.peephole_i, p.peephole_f, p.peephole_o});
  }
  // Read on this thread: the precision is thread local and a direction may
  // run on a helper thread below.
  const bool bf16 = kernels::products_in_bf16(input);
  auto run = [&](int d) {
    kernels::ScanOptions so{kernels::Cell::lstm, kernels::Reduce::none};
    so.bf16 = bf16;
    scans[d].out = kernels::recurrent_scan(scans[d].proj, scans[d].index, directions_[d].weight_hh,
                                           scans[d].peep, so);
  };
  if (dirs == 2 && !kernels::scan_uses_row_blocks(n) && crnn::blas_num_threads() > 1) {
    // A batch is too few rows to split; run the two directions side by side
    // instead, one core and a single-threaded GEMM each. Grad mode is thread
    // local: carry it over.
    crnn::SingleThreadedBlas single;
    const bool grad = torch::GradMode::is_enabled();
    crnn::run_alongside(
        [&] {
          torch::AutoGradMode mode(grad);
          run(1);
        },
        [&] { run(0); });
  } else {
    for (int d = 0; d < dirs; ++d) run(d);
  }
  std::vector<torch::Tensor> hs, cs;
  for (int d = 0; d < dirs; ++d) {
    auto h = scans[d].out[0], c = scans[d].out[1];  // T × N × m, in scan order
    if (d == 1) {
      // Map scan step back to frame: the reversal is its own inverse.
      auto back = rev.unsqueeze(-1).expand({steps, n, h.size(2)});
      h = h.gather(0, back);
      c = c.gather(0, back);
    }
    hs.push_back(h);
    cs.push_back(c);
  }
  auto h = (dirs == 1 ? hs[0] : torch::cat(hs, 2)).transpose(0, 1);
  auto c = (dirs == 1 ? cs[0] : torch::cat(cs, 2)).transpose(0, 1);
  if (ragged) {
    h = zero_padding(h, lengths);
    c = zero_padding(c, lengths);
  }
  return {h, c};
}

PaddedSequence PeepholeLSTMImpl::forward(const PaddedSequence& x) {
  check_padded(x, "PeepholeLSTM", this);
  return {forward_states(x.data, x.lengths).hidden, x.lengths};
}

}  // namespace crnn::nn

#include "crnn/nn/conv_recurrent.h"

#include <cmath>

#include "crnn/kernels/fused_lstm.h"
#include "crnn/kernels/precision.h"

namespace crnn::nn {

int64_t ConvRecurrentOptions::resolved_hidden_size() const {
  if (hidden_size() > 0) return hidden_size();
  if (source() == FeatureSource::output) return features();
  return kind() == RecurrentKind::blstm ? features() / 2 : features();
}

void ConvRecurrentOptions::validate() const {
  const char* who = "ConvRecurrent";
  TORCH_CHECK(input_size() >= 1, who, ": input_size (k) must be >= 1, got ", input_size());
  TORCH_CHECK(features() >= 1 && features() <= kMaxLayerWidth, who, ": features (n) must be in 1..", kMaxLayerWidth,
              ", got ", features());
  check_window_options(who, window(), shift(), pool(), pool_shift());
  TORCH_CHECK(hidden_size() >= 0 && hidden_size() <= kMaxLayerWidth, who, ": hidden_size must be in 0..",
              kMaxLayerWidth, " (0 = derived), got ", hidden_size());
  const bool has_cell = kind() != RecurrentKind::rnn;
  TORCH_CHECK(has_cell || source() != FeatureSource::cell, who,
              ": source=cell needs an LSTM kind (lstm or blstm); kind rnn has no cell state");
  TORCH_CHECK(combine() != FeatureSource::output, who,
              ": combine must be hidden or cell (the states the output map reads)");
  TORCH_CHECK(has_cell || combine() != FeatureSource::cell, who,
              ": combine=cell needs an LSTM kind (lstm or blstm); kind rnn has no cell state");
  TORCH_CHECK(has_cell || !extended(), who,
              ": extended (position-specific input weights) is defined for lstm and blstm only");
  if (source() != FeatureSource::output) {
    const int64_t dirs = kind() == RecurrentKind::blstm ? 2 : 1;
    TORCH_CHECK(features() % dirs == 0, who, ": with kind blstm and source ", to_string(source()),
                " the features are both directions' states side by side, so n (", features(),
                ") must be even; use source=output for eq. 8/9");
    TORCH_CHECK(resolved_hidden_size() * dirs == features(), who, ": with source ",
                to_string(source()), " the recurrent size is fixed by n: hidden_size ",
                hidden_size(), " × ", dirs, " direction(s) != features ", features(),
                " (use source=output for a free recurrent size)");
  }
}

ConvRecurrentImpl::ConvRecurrentImpl(const ConvRecurrentOptions& options_) : options(options_) {
  options.validate();
  const int64_t k = options.input_size(), m = options.resolved_hidden_size();
  const int64_t dirs = options.kind() == RecurrentKind::blstm ? 2 : 1;
  if (options.kind() == RecurrentKind::rnn) {
    rnn_weight_ih = register_parameter("rnn_weight_ih", torch::empty({m, k}));
    rnn_weight_hh = register_parameter("rnn_weight_hh", torch::empty({m, m}));
    rnn_bias = register_parameter("rnn_bias", torch::empty({m}));
  } else {
    lstm = register_module(
        "lstm", PeepholeLSTM(PeepholeLSTMOptions(k, m)
                                 .bidirectional(options.kind() == RecurrentKind::blstm)
                                 .peepholes(options.peepholes())
                                 .positions(options.extended() ? options.window() : 0)
                                 .impl(options.impl())));
  }
  if (options.source() == FeatureSource::output) {
    output = register_module("output", torch::nn::Linear(dirs * m, options.features()));
  }
  reset_parameters();
}

void ConvRecurrentImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  if (lstm) lstm->reset_parameters();
  if (rnn_weight_ih.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(rnn_weight_hh.size(0)));
    for (auto* p : {&rnn_weight_ih, &rnn_weight_hh, &rnn_bias}) p->uniform_(-bound, bound);
  }
  if (output) output->reset_parameters();
}

torch::Tensor ConvRecurrentImpl::window_features(const torch::Tensor& windows) {
  // windows: N × r1 × k. Every window starts from h = c = 0 (SPEC §1).
  torch::Tensor states;  // N × r1 × D
  const bool use_cell = options.source() == FeatureSource::cell ||
                        (options.source() == FeatureSource::output &&
                         options.combine() == FeatureSource::cell);
  if (options.kind() == RecurrentKind::rnn) {
    // eq. 1: h_t = σ(W_xh x_t + W_hh h_{t−1} + b_h)
    const auto xp = (torch::matmul(windows, rnn_weight_ih.t()) + rnn_bias).unbind(1);
    std::vector<torch::Tensor> hs;
    auto h = torch::sigmoid(xp[0]);
    hs.push_back(h);
    for (int64_t t = 1; t < windows.size(1); ++t) {
      h = torch::sigmoid(xp[t] + h.mm(rnn_weight_hh.t()));
      hs.push_back(h);
    }
    states = torch::stack(hs, 1);
  } else {
    auto s = lstm->forward_states_composed(windows);
    states = use_cell ? s.cell : s.hidden;
  }
  // eq. 2 / eq. 8 / eq. 9: an affine map of the (combined) states.
  if (options.source() == FeatureSource::output) states = output(states);
  switch (options.reduce()) {
    case WindowReduce::max:
      return std::get<0>(states.max(1));
    case WindowReduce::mean:
      return states.mean(1);
    case WindowReduce::last:
    default:
      return states.select(1, states.size(1) - 1);
  }
}

PaddedSequence ConvRecurrentImpl::forward(const PaddedSequence& x) {
  check_padded(x, "ConvRecurrent", this);
  TORCH_CHECK(x.features() == options.input_size(), "ConvRecurrent: input has ", x.features(),
              " features per frame but the layer was built for input_size=",
              options.input_size());
  if (options.impl() == Implementation::fused && x.data.device().is_cpu() &&
      (x.data.scalar_type() == torch::kFloat || x.data.scalar_type() == torch::kDouble)) {
    return forward_fused(x);
  }
  return forward_composed(x);
}

PaddedSequence ConvRecurrentImpl::forward_fused(const PaddedSequence& x) {
  check_padded(x, "ConvRecurrent", this);
  const int64_t b = x.batch_size(), k = x.features();
  const int64_t r1 = options.window(), r2 = options.shift();
  const bool rnn = options.kind() == RecurrentKind::rnn;
  const int dirs = options.kind() == RecurrentKind::blstm ? 2 : 1;
  auto counts = window_counts(x.lengths, r1, r2);
  const int64_t w = counts.max().item<int64_t>();
  const int64_t n = b * w;  // every window of the batch is one sequence of the scan
  // Frames past each sequence's end are zero, and there are enough of them for
  // every window (as extract_windows does).
  const int64_t needed = (w - 1) * r2 + r1;
  auto data = zero_padding(x.data, x.lengths);
  if (data.size(1) < needed) data = torch::constant_pad_nd(data, {0, 0, 0, needed - data.size(1)});
  const int64_t frames = data.size(1);

  // Window-local position of scan step t: forward t, backward r1 − 1 − t.
  auto step = torch::arange(r1, torch::kLong).unsqueeze(1);                 // r1 × 1
  auto window = torch::arange(w, torch::kLong);                             // W
  auto seq = torch::arange(b, torch::kLong).unsqueeze(1);                   // B × 1
  torch::Tensor windows_tm;  // r1 × N × k, only for position-specific weights
  if (options.extended()) {
    windows_tm = data.unfold(1, r1, r2).narrow(1, 0, w).permute({3, 0, 1, 2}).reshape({r1, n, k});
  }

  const bool use_cell = options.source() == FeatureSource::cell ||
                        (options.source() == FeatureSource::output &&
                         options.combine() == FeatureSource::cell);
  const bool reduce_in_scan = options.source() != FeatureSource::output;
  std::vector<torch::Tensor> parts;  // reduced features or full states, per direction
  for (int d = 0; d < dirs; ++d) {
    auto position = d == 0 ? step : (r1 - 1 - step);  // r1 × 1
    torch::Tensor proj, index, weight_hh, peep;
    if (rnn) {
      // eq. 1, projected once per frame.
      proj = kernels::linear(data.reshape({b * frames, k}), rnn_weight_ih, rnn_bias);
      weight_hh = rnn_weight_hh;
    } else {
      const auto p = lstm->direction(d);
      weight_hh = p.weight_hh;
      if (p.peephole_i.defined()) peep = torch::stack({p.peephole_i, p.peephole_f, p.peephole_o});
      if (options.extended()) {
        // A separate input matrix per position: project each (position, window).
        proj = kernels::baddbmm(p.bias, windows_tm, p.weight_ih.transpose(1, 2)).reshape({r1 * n, -1});
      } else {
        // W_x·x + b once per frame; overlapping windows share the rows.
        proj = kernels::linear(data.reshape({b * frames, k}), p.weight_ih, p.bias);
      }
    }
    if (options.extended()) {
      index = position * n + torch::arange(n, torch::kLong).unsqueeze(0);  // r1 × N
    } else {
      // Row of frame (b, window·r2 + position).
      auto frame = (seq * frames + window.unsqueeze(0) * r2).reshape({1, n});  // 1 × N
      index = frame + position;                                               // r1 × N
    }
    kernels::ScanOptions so;
    so.cell = rnn ? kernels::Cell::rnn : kernels::Cell::lstm;
    so.bf16 = kernels::products_in_bf16(proj);
    if (reduce_in_scan) {
      so.reduce_cell = use_cell;
      switch (options.reduce()) {
        case WindowReduce::max: so.reduce = kernels::Reduce::max; break;
        case WindowReduce::mean: so.reduce = kernels::Reduce::mean; break;
        case WindowReduce::last:
        default:
          // The window's last frame is the backward direction's first step.
          so.reduce = kernels::Reduce::step;
          so.step = d == 0 ? r1 - 1 : 0;
          break;
      }
    }
    auto out = kernels::recurrent_scan(proj, index.contiguous(), weight_hh, peep, so);
    if (reduce_in_scan) {
      parts.push_back(out[0]);  // N × m
    } else {
      auto states = use_cell ? out[1] : out[0];  // r1 × N × m in scan order
      parts.push_back(d == 0 ? states : states.flip(0));
    }
  }
  torch::Tensor features;  // N × n
  if (reduce_in_scan) {
    features = dirs == 1 ? parts[0] : torch::cat(parts, 1);
  } else {
    // eq. 2 / 8 / 9 on every step, then the reduction over the window.
    auto states = kernels::linear(dirs == 1 ? parts[0] : torch::cat(parts, 2), output->weight,
                                 output->bias);  // r1 × N × n
    switch (options.reduce()) {
      case WindowReduce::max: features = std::get<0>(states.max(0)); break;
      case WindowReduce::mean: features = states.mean(0); break;
      case WindowReduce::last:
      default: features = states.select(0, r1 - 1); break;
    }
  }
  PaddedSequence y{zero_padding(features.view({b, w, options.features()}), counts), counts};
  return max_pool_sequence(y, options.pool(), options.pool_shift());
}

PaddedSequence ConvRecurrentImpl::forward_composed(const PaddedSequence& x) {
  check_padded(x, "ConvRecurrent", this);
  const int64_t b = x.batch_size(), r1 = options.window();
  auto windows = extract_windows(x, r1, options.shift());  // B × W × r1 × k
  const int64_t w = windows.size(1);
  auto features = window_features(windows.reshape({b * w, r1, x.features()}));
  auto counts = window_counts(x.lengths, r1, options.shift());
  PaddedSequence y{zero_padding(features.view({b, w, options.features()}), counts), counts};
  return max_pool_sequence(y, options.pool(), options.pool_shift());
}

}  // namespace crnn::nn

#include "crnn/nn/flops.h"

#include <algorithm>

#include "crnn/nn/sequence.h"

namespace crnn::nn {

double forward_flops(const SequenceClassifierOptions& options, int64_t batch, int64_t frames) {
  TORCH_CHECK(batch >= 1 && frames >= 1, "forward_flops: batch and frames must be >= 1");
  const double b = static_cast<double>(batch);
  double k = static_cast<double>(options.input_size());
  int64_t steps = frames;
  double total = 0;
  for (const auto& l : options.front_end()) {
    const int64_t r1 = l.window();
    const double windows = b * static_cast<double>(window_count(steps, r1, l.shift()));
    const double n = static_cast<double>(l.features());
    if (l.convolutional()) {
      total += windows * 2.0 * r1 * k * n;
    } else {
      const auto ro = l.recurrent_options(options.input_size());
      const double m = static_cast<double>(ro.resolved_hidden_size());
      const double gates = l.kind() == RecurrentKind::rnn ? 1 : 4;
      const double dirs = l.kind() == RecurrentKind::blstm ? 2 : 1;
      double per_window = dirs * (r1 * 2.0 * k * gates * m + (r1 - 1) * 2.0 * m * gates * m);
      if (l.source() == FeatureSource::output) per_window += r1 * 2.0 * dirs * m * n;
      total += windows * per_window;
    }
    steps = pooled_count(window_count(steps, r1, l.shift()), l.pool(), l.pool_shift());
    k = n;
  }
  const double t = static_cast<double>(steps);
  const double r = static_cast<double>(options.recurrent_size());
  const double dirs = options.bidirectional() ? 2 : 1;
  total += dirs * b * (t * 2.0 * k * 4 * r + (t - 1) * 2.0 * r * 4 * r);
  const double d = static_cast<double>(options.dense_size());
  total += b * t * 2.0 * (dirs * r) * d;
  total += b * t * 2.0 * d * static_cast<double>(options.num_classes());
  return total;
}

std::vector<MemoryPart> activation_parts(const SequenceClassifierOptions& options, int64_t batch, int64_t frames) {
  TORCH_CHECK(batch >= 1 && frames >= 1, "activation_parts: batch and frames must be >= 1");
  const double b = static_cast<double>(batch), f32 = 4.0;
  std::vector<MemoryPart> parts;
  double k = static_cast<double>(options.input_size());
  int64_t steps = frames;
  for (size_t i = 0; i < options.front_end().size(); ++i) {
    const auto& l = options.front_end()[i];
    const double r1 = static_cast<double>(l.window()), n = static_cast<double>(l.features());
    const int64_t w = window_count(steps, l.window(), l.shift());
    const double windows = b * static_cast<double>(w);
    // Frames the layer sees: padded so that every window has its r1 frames.
    const double padded = b * std::max(static_cast<double>(steps), (static_cast<double>(w) - 1) * l.shift() + r1);
    double bytes = 0;
    if (l.convolutional()) {
      bytes = f32 * (2.0 * windows * r1 * k + 2.0 * windows * n);  // windows (and their gradient), outputs
    } else {
      const auto ro = l.recurrent_options(static_cast<int64_t>(k));
      const double m = static_cast<double>(ro.resolved_hidden_size());
      const double gates = l.kind() == RecurrentKind::rnn ? 1 : 4;
      const double dirs = l.kind() == RecurrentKind::blstm ? 2 : 1;
      const double proj_rows = l.extended() ? r1 * windows : padded;
      // Per direction: projections and their gradient, every step's gates
      // (overwritten by their gradient), h and c.
      double per_dir = 2.0 * proj_rows * gates * m + r1 * windows * (gates * m + 2.0 * m);
      bytes = f32 * (dirs * per_dir + 2.0 * windows * n);  // + the layer's features and their gradient
      if (l.source() == FeatureSource::output) bytes += f32 * 2.0 * r1 * windows * n;
    }
    parts.push_back({"model.front_end." + std::to_string(i), bytes});
    steps = pooled_count(w, l.pool(), l.pool_shift());
    k = n;
  }
  const double t = static_cast<double>(steps), r = static_cast<double>(options.recurrent_size());
  const double dirs = options.bidirectional() ? 2 : 1;
  parts.push_back({"model.recurrent_size", f32 * dirs * b * t * (2.0 * 4 * r + 4 * r + 2.0 * r)});
  const double d = static_cast<double>(options.dense_size()), c = static_cast<double>(options.num_classes());
  parts.push_back({"model.dense_size", f32 * b * t * (2.0 * d + 2.0 * c)});
  return parts;
}

std::vector<ParameterPart> parameter_parts(const SequenceClassifierOptions& options) {
  std::vector<ParameterPart> parts;
  double k = static_cast<double>(options.input_size());
  for (size_t i = 0; i < options.front_end().size(); ++i) {
    const auto& l = options.front_end()[i];
    const double n = static_cast<double>(l.features()), r1 = static_cast<double>(l.window());
    double count = 0;
    if (l.convolutional()) {
      count = n * k * r1 + n;
    } else {
      const auto ro = l.recurrent_options(static_cast<int64_t>(k));
      const double m = static_cast<double>(ro.resolved_hidden_size());
      const double gates = l.kind() == RecurrentKind::rnn ? 1 : 4;
      const double dirs = l.kind() == RecurrentKind::blstm ? 2 : 1;
      const double inputs = (l.extended() ? r1 : 1.0) * gates * m * k;
      count = dirs * (inputs + gates * m * m + gates * m + (l.peepholes() && gates == 4 ? 3 * m : 0));
      if (l.source() == FeatureSource::output) count += dirs * m * n + n;
    }
    parts.push_back({"model.front_end." + std::to_string(i), count});
    k = n;
  }
  const double r = static_cast<double>(options.recurrent_size()), dirs = options.bidirectional() ? 2 : 1;
  parts.push_back({"model.recurrent_size", dirs * (4 * r * k + 4 * r * r + 4 * r + (options.peepholes() ? 3 * r : 0))});
  const double d = static_cast<double>(options.dense_size()), c = static_cast<double>(options.num_classes());
  parts.push_back({"model.dense_size", dirs * r * d + d + d * c + c});
  return parts;
}

}  // namespace crnn::nn

#include "crnn/nn/sequence_classifier.h"

#include "crnn/kernels/precision.h"

#include <cmath>
#include <limits>

namespace crnn::nn {

std::string FrontEndLayerOptions::type_name() const {
  return convolutional() ? "conv" : to_string(kind());
}

ConvRecurrentOptions FrontEndLayerOptions::recurrent_options(int64_t input_size) const {
  return ConvRecurrentOptions(input_size, features())
      .hidden_size(hidden_size())
      .kind(kind())
      .extended(extended())
      .source(source())
      .combine(combine())
      .reduce(reduce())
      .window(window())
      .shift(shift())
      .pool(pool())
      .pool_shift(pool_shift())
      .peepholes(peepholes())
      .impl(impl());
}

WindowConvOptions FrontEndLayerOptions::conv_options(int64_t input_size) const {
  return WindowConvOptions(input_size, features())
      .activation(activation())
      .window(window())
      .shift(shift())
      .pool(pool())
      .pool_shift(pool_shift());
}

std::vector<std::string> SequenceClassifierOptions::preset_names() {
  return {"emotion-baseline", "emotion-conv",  "emotion-clstm", "emotion-eclstm",
          "agender-baseline", "agender-conv",  "agender-clstm", "agender-cblstm"};
}

SequenceClassifierOptions SequenceClassifierOptions::preset(const std::string& name_in,
                                                            int64_t num_classes,
                                                            int64_t input_size) {
  // Every rejection names the known presets, whichever part of the name is wrong.
  const auto unknown = [&name_in] {
    std::string known;
    for (auto& n : preset_names()) known += " " + n;
    TORCH_CHECK(false, "unknown model preset '", name_in, "'; known presets:", known, " (aliases: emotion, agender)");
  };
  std::string name = name_in;
  if (name == "emotion") name = "emotion-clstm";
  if (name == "agender") name = "agender-cblstm";
  // Paper §IV-A: r1 = 5, r2 = 2, n = 100, max pooling over 2 windows, shift 2.
  auto layer = FrontEndLayerOptions().features(100).window(5).shift(2).pool(2).pool_shift(2);
  SequenceClassifierOptions o(input_size, num_classes);
  o.recurrent_size(256).dense_size(400);
  const auto dash = name.find('-');
  if (dash == std::string::npos) unknown();
  const std::string setup = name.substr(0, dash), front = name.substr(dash + 1);
  if (setup == "emotion") {
    o.bidirectional(false).average_last(4);
    FrontEndLayerOptions l = layer;
    if (front == "baseline") return o;
    if (front == "conv") l.convolutional(true).activation(Activation::sigmoid);
    else if (front == "clstm") l.kind(RecurrentKind::lstm).source(FeatureSource::cell).reduce(WindowReduce::last);
    else if (front == "eclstm") l.kind(RecurrentKind::lstm).extended(true).source(FeatureSource::cell).reduce(WindowReduce::last);
    else unknown();
    o.front_end({l, l});
    return o;
  }
  if (setup == "agender") {
    o.bidirectional(true).average_last(0);
    FrontEndLayerOptions l = layer;
    if (front == "baseline") return o;
    if (front == "conv") l.convolutional(true).activation(Activation::sigmoid);
    else if (front == "clstm") l.kind(RecurrentKind::lstm).source(FeatureSource::cell).reduce(WindowReduce::max);
    else if (front == "cblstm")
      l.kind(RecurrentKind::blstm).hidden_size(100).source(FeatureSource::output)
          .combine(FeatureSource::cell).reduce(WindowReduce::max);
    else unknown();
    o.front_end({l});
    return o;
  }
  unknown();
  return o;
}

void SequenceClassifierOptions::validate() const {
  const char* who = "SequenceClassifier";
  TORCH_CHECK(input_size() >= 1, who, ": input_size must be >= 1, got ", input_size());
  TORCH_CHECK(num_classes() >= 2, who, ": num_classes must be >= 2, got ", num_classes());
  TORCH_CHECK(input_size() <= kMaxLayerWidth, who, ": input_size must be <= ", kMaxLayerWidth, ", got ", input_size());
  TORCH_CHECK(recurrent_size() >= 1 && recurrent_size() <= kMaxLayerWidth, who, ": recurrent_size must be in 1..",
              kMaxLayerWidth, ", got ", recurrent_size());
  TORCH_CHECK(dense_size() >= 1 && dense_size() <= kMaxLayerWidth, who, ": dense_size must be in 1..", kMaxLayerWidth,
              ", got ", dense_size());
  TORCH_CHECK(average_last() >= 0, who, ": average_last must be >= 0 (0 = all steps), got ",
              average_last());
}

SequenceClassifierImpl::SequenceClassifierImpl(const SequenceClassifierOptions& options_)
    : options(options_) {
  options.validate();
  int64_t size = options.input_size();
  for (size_t i = 0; i < options.front_end().size(); ++i) {
    const auto& l = options.front_end()[i];
    const std::string name = "front_end_" + std::to_string(i);
    if (l.convolutional()) {
      front_end.emplace_back(register_module(name, WindowConv(l.conv_options(size))));
    } else {
      front_end.emplace_back(register_module(name, ConvRecurrent(l.recurrent_options(size))));
    }
    size = l.features();
  }
  recurrent = register_module(
      "recurrent", PeepholeLSTM(PeepholeLSTMOptions(size, options.recurrent_size())
                                    .bidirectional(options.bidirectional())
                                    .peepholes(options.peepholes())
                                    .impl(options.impl())));
  dense = register_module("dense", torch::nn::Linear(recurrent->output_size(), options.dense_size()));
  classes = register_module("classes", torch::nn::Linear(options.dense_size(), options.num_classes()));
}

void SequenceClassifierImpl::reset_parameters() {
  for (auto& layer : front_end) std::visit([](auto& m) { m->reset_parameters(); }, layer);
  recurrent->reset_parameters();
  dense->reset_parameters();
  classes->reset_parameters();
}

PaddedSequence SequenceClassifierImpl::front_end_forward(const PaddedSequence& x) {
  check_padded(x, "SequenceClassifier", this);
  TORCH_CHECK(x.features() == options.input_size(), "SequenceClassifier: input has ",
              x.features(), " features per frame but the model was built for input_size=",
              options.input_size());
  PaddedSequence h = x;
  for (auto& layer : front_end) h = std::visit([&](auto& m) { return m->forward(h); }, layer);
  return h;
}

PaddedSequence SequenceClassifierImpl::step_log_probs(const PaddedSequence& x) {
  auto h = recurrent->forward(front_end_forward(x));
  auto hidden = torch::relu(kernels::linear(h.data, dense->weight, dense->bias));
  auto logits = kernels::linear(hidden, classes->weight, classes->bias);
  return {torch::log_softmax(logits, -1), h.lengths};
}

torch::Tensor SequenceClassifierImpl::forward(const PaddedSequence& x) {
  return average_log_probs(step_log_probs(x), options.average_last());
}

torch::Tensor average_log_probs(const PaddedSequence& lp, int64_t last) {
  const auto& lengths = lp.lengths;
  auto start = last > 0 ? (lengths - last).clamp_min(0) : torch::zeros_like(lengths);
  auto t = torch::arange(lp.max_length(), torch::kLong).unsqueeze(0);
  auto mask = ((t >= start.unsqueeze(1)) & (t < lengths.unsqueeze(1))).to(lp.data.device());
  auto masked = lp.data.masked_fill(mask.logical_not().unsqueeze(-1),
                                    -std::numeric_limits<double>::infinity());
  auto count = (lengths - start).to(lp.data.options()).unsqueeze(1);
  return torch::logsumexp(masked, 1) - count.log();
}

}  // namespace crnn::nn

#pragma once
/// \file module_spec.h
/// A crnn layer or classifier named by a kind and a JSON object of its C++
/// options — the form in which the PyTorch front end (python/crnn/nn.py) and
/// exported TorchScript models describe a module to the `torch.ops.crnn.*`
/// operators (ops/torch_ops.h). The keys are the C++ option names.
///
/// \code
///   auto m = crnn::ops::build_module("conv_recurrent",
///       R"({"input_size": 26, "features": 100, "kind": "lstm", "source": "cell"})");
///   crnn::nn::PaddedSequence y = m.forward({x, lengths});
/// \endcode

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crnn/nn/sequence.h"

namespace crnn::ops {

/// The kinds: "conv_recurrent" (nn::ConvRecurrent), "window_conv"
/// (nn::WindowConv), "peephole_lstm" (nn::PeepholeLSTM) and
/// "sequence_classifier" (nn::SequenceClassifier; its output `data` is the
/// B × C log of the averaged class probabilities, `lengths` the input's).
const std::vector<std::string>& module_kinds();

/// The Python class that stands for a kind ("crnn.nn.ConvRecurrent"), for messages.
std::string python_name(const std::string& kind);

struct BuiltModule {
  std::shared_ptr<torch::nn::Module> module;
  std::function<nn::PaddedSequence(const nn::PaddedSequence&)> forward;
  int64_t input_size = 0;
};

/// Builds the module with freshly initialized parameters (each layer's own
/// rule, drawn from LibTorch's default generator).
///
/// Options of "sequence_classifier": `classes` and `input_size` (default 26)
/// with either `preset` (a SequenceClassifierOptions preset name) or `config`
/// (the TOML text of a run config, as a model file records it).
///
/// Throws c10::Error naming the Python class and the offending key: an unknown
/// kind, an unknown option, a value of the wrong type, an invalid combination.
BuiltModule build_module(const std::string& kind, const std::string& options_json);

}  // namespace crnn::ops

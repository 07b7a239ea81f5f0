#pragma once
/// \file torch_ops.h
/// crnn as PyTorch operators (`torch.ops.crnn.*`) and a TorchScript class
/// (`torch.classes.crnn.Classifier`), registered by register_ops(). The Python
/// module (python/crnn) and exported TorchScript models call these; they run
/// the same C++ layers, fused kernels, feature extractors and inference path
/// as the `crnn` command.
///
/// Operators (schemas as PyTorch prints them):
///   module_init(str kind, str options) -> (str[] names, Tensor[] params)
///       a freshly initialized module's parameters (module_spec.h kinds and options);
///   module_forward(str kind, str options, Tensor[] params, Tensor x, Tensor lengths,
///                  bool training) -> (Tensor y, Tensor y_lengths)
///       the module's forward with the given parameters, differentiable with
///       respect to x and every parameter (the layers' own backward, fused kernels included);
///   load_model(str path) -> (str info_json, str[] names, Tensor[] params)
///       a model file's description (module options, labels, task, feature
///       extractor, normalization) and weights;
///   fbank(Tensor waveform, int sample_rate, int num_bins=26) -> Tensor
///       Kaldi log mel filterbank (audio/fbank.h, the paper's options);
///   set_num_threads(int n) -> int
///       LibTorch's and OpenBLAS's threads together (util/threads.h; 0 = all cores);
///   set_precision(str precision) -> str
///       this thread's matrix-product precision, "fp32" or "bf16"
///       (kernels/precision.h); returns the previous one;
///   bf16_available() -> (bool, str)
///       whether bf16 runs here, and why not.
///
/// \code
///   crnn::ops::register_ops();
///   auto op = c10::Dispatcher::singleton().findSchemaOrThrow("crnn::fbank", "");
/// \endcode

#include <torch/torch.h>

#include <string>
#include <tuple>
#include <vector>

namespace crnn::ops {

/// Registers the operators and the Classifier class once per process
/// (idempotent, thread-safe). The Python ops library calls it when loaded.
void register_ops();

/// A parameter's attribute name in Python and TorchScript modules: the C++
/// name with '.' → '_' ("lstm.weight_ih" → "lstm_weight_ih").
std::string parameter_attribute_name(const std::string& cpp_name);

std::tuple<std::vector<std::string>, std::vector<torch::Tensor>> module_init(const std::string& kind,
                                                                              const std::string& options);

std::tuple<torch::Tensor, torch::Tensor> module_forward(const std::string& kind, const std::string& options,
                                                        const std::vector<torch::Tensor>& params,
                                                        const torch::Tensor& x, const torch::Tensor& lengths,
                                                        bool training);

std::tuple<std::string, std::vector<std::string>, std::vector<torch::Tensor>> load_model(const std::string& path);

torch::Tensor fbank(const torch::Tensor& waveform, int64_t sample_rate, int64_t num_bins);

}  // namespace crnn::ops

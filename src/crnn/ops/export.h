#pragma once
/// \file export.h
/// A trained model as a TorchScript module (`crnn export best.pt -o model.pt`)
/// that plain PyTorch runs once the crnn operators are loaded:
///
/// \code{.py}
///   torch.ops.load_library(crnn_ops_library)     # e.g. crnn.OPS_LIBRARY
///   m = torch.jit.load("model.pt")
///   log_p = m(x, lengths)                       # B × C, as `crnn predict` computes
///   m.labels, m.task, m.feature_extractor, m.normalization, m.global_mean, m.global_std
/// \endcode
///
/// The module's parameters are the model's (attribute names: ops/torch_ops.h's
/// parameter_attribute_name), its forward calls torch.ops.crnn.module_forward.

#include <string>

namespace crnn::ops {

/// Writes `out_path` (atomically) from the model file `model_path`. Throws
/// DataError naming the file on a missing or damaged model or a failed write.
void export_torchscript(const std::string& model_path, const std::string& out_path);

}  // namespace crnn::ops

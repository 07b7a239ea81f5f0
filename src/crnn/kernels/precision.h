#pragma once
/// \file precision.h
/// The precision of crnn's matrix products: fp32 everywhere, or bf16 mixed
/// precision on CPUs with AVX512-BF16.
///
/// In bf16 mode every matrix product of the layers (input projections, the
/// recurrent products W_h·h of the fused scans and their gradients, the conv
/// GEMM, Dense and the class layer) rounds its two operands to bfloat16 and
/// accumulates in fp32 (oneDNN through LibTorch); the product itself comes
/// back rounded to bf16 and is widened to fp32 at once. Everything else stays
/// fp32: recurrent state h and c, gate nonlinearities, peepholes, biases, the
/// loss, the parameters (master weights) and Adam's moments.
///
/// The mode is per thread, like LibTorch's grad mode; the fused scans record
/// it when they run, so their backward uses the forward's mode.
///
/// \code
///   crnn::kernels::require_bf16();   // clear error where bf16 is unavailable
///   crnn::kernels::PrecisionGuard bf16(crnn::kernels::Precision::bf16);
///   auto y = crnn::kernels::linear(x, weight, bias);   // bf16 operands, fp32 y
/// \endcode

#include <string>

#include <torch/torch.h>

namespace crnn::kernels {

enum class Precision { fp32, bf16 };

/// "fp32" or "bf16".
std::string to_string(Precision p);
/// Parses "fp32" / "bf16"; throws std::invalid_argument naming the value otherwise.
Precision parse_precision(const std::string& text);

/// Whether this machine runs bf16 matrix products natively: the CPU has
/// AVX512-BF16 (and the OS saves AVX-512 state), and LibTorch was built with
/// oneDNN. CRNN_DISABLE_BF16=1 in the environment makes it false (tests of the
/// refusal).
bool bf16_available();
/// Why bf16 is unavailable here (empty when it is available).
std::string bf16_unavailable_reason();
/// Throws std::runtime_error with bf16_unavailable_reason() unless available:
/// there is no silent slow path.
void require_bf16();

/// This thread's matrix-product precision (fp32 unless a guard says otherwise).
Precision matmul_precision();
/// Sets this thread's precision until changed again (the Python module's
/// `crnn.set_precision`; C++ code uses PrecisionGuard). Setting bf16 checks
/// require_bf16(). Returns the previous precision.
Precision set_matmul_precision(Precision p);

/// Sets this thread's matrix-product precision while alive; restores the
/// previous one after. Setting bf16 checks require_bf16().
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p);
  ~PrecisionGuard();
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  Precision saved_;
};

/// x·weightᵀ + bias (bias may be undefined) over the last dimension of x, in
/// this thread's precision. Differentiable; for float inputs in bf16 mode the
/// result and all gradients are fp32, the products inside bf16. Double inputs
/// (finite-difference tests) always run in double.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias);

/// bias + batch1 · batch2 (batched; bias broadcast), in this thread's precision.
torch::Tensor baddbmm(const torch::Tensor& bias, const torch::Tensor& batch1,
                      const torch::Tensor& batch2);

/// Whether a tensor of this dtype has its products run in bf16 under the
/// current mode (float tensors in bf16 mode).
bool products_in_bf16(const torch::Tensor& t);

}  // namespace crnn::kernels

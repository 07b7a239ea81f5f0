#include "crnn/kernels/precision.h"

#include <ATen/Context.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <cstdlib>
#include <stdexcept>

namespace crnn::kernels {
namespace {

thread_local Precision current = Precision::fp32;

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
  // avx512f through the compiler's check also confirms the OS saves the
  // AVX-512 registers (XCR0); AVX512_BF16 is CPUID leaf 7, subleaf 1, EAX bit 5.
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a >> 5) & 1u;
#else
  return false;
#endif
}

bool disabled_by_environment() {
  const char* v = std::getenv("CRNN_DISABLE_BF16");
  return v && *v && std::string(v) != "0";
}

torch::Tensor to_bf16(const torch::Tensor& t) { return t.to(torch::kBFloat16); }

}  // namespace

std::string to_string(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  throw std::invalid_argument("precision must be \"fp32\" or \"bf16\", got \"" + text + "\"");
}

std::string bf16_unavailable_reason() {
  if (disabled_by_environment()) return "bf16 is switched off by CRNN_DISABLE_BF16 in the environment";
  if (!cpu_has_avx512_bf16())
    return "bf16 needs a CPU with AVX512-BF16 (e.g. Intel Cooper Lake / Sapphire Rapids, AMD Zen 4); "
           "this CPU has none, and crnn has no emulated bf16 path (it would be slower than fp32): "
           "use precision fp32";
  if (!at::hasMKLDNN())
    return "bf16 needs LibTorch built with oneDNN (MKLDNN); this LibTorch has none: use precision fp32";
  return "";
}

bool bf16_available() {
  static const bool hardware = cpu_has_avx512_bf16() && at::hasMKLDNN();
  return hardware && !disabled_by_environment();
}

void require_bf16() {
  if (!bf16_available()) throw std::runtime_error(bf16_unavailable_reason());
}

Precision matmul_precision() { return current; }

Precision set_matmul_precision(Precision p) {
  if (p == Precision::bf16) require_bf16();
  const Precision before = current;
  current = p;
  return before;
}

PrecisionGuard::PrecisionGuard(Precision p) : saved_(set_matmul_precision(p)) {}

PrecisionGuard::~PrecisionGuard() { current = saved_; }

bool products_in_bf16(const torch::Tensor& t) {
  return current == Precision::bf16 && t.scalar_type() == torch::kFloat;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  if (!products_in_bf16(x)) return torch::nn::functional::linear(x, weight, bias);
  auto y = torch::matmul(to_bf16(x), to_bf16(weight).t()).to(torch::kFloat);
  // In place: no second fp32 copy of a large projection (the widening's
  // backward does not need its output).
  return bias.defined() ? y.add_(bias) : y;
}

torch::Tensor baddbmm(const torch::Tensor& bias, const torch::Tensor& batch1,
                      const torch::Tensor& batch2) {
  if (!products_in_bf16(batch1)) return torch::baddbmm(bias, batch1, batch2);
  return torch::bmm(to_bf16(batch1), to_bf16(batch2)).to(torch::kFloat).add_(bias);
}

}  // namespace crnn::kernels

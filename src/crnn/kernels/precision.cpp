#include "crnn/kernels/precision.h"

#include "crnn/kernels/buffer_pool.h"

#include <ATen/Context.h>
#include <ATen/ExpandUtils.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
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

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Rows per bf16 product chunk: as many as keep the chunk's largest bf16
/// buffer (operand or product, rows × width × 2 bytes) at 4 MB, but at least
/// 1,024. The chunks are reused by the allocator, so bf16 adds no full-size
/// copy of any activation, and each call still has enough rows for oneDNN's
/// full rate (fewer, larger calls: each costs a fork-join of its threads).
int64_t chunk_rows(int64_t width) {
  constexpr int64_t kChunkBytes = int64_t{4} << 20;
  return std::max<int64_t>(1024, kChunkBytes / (2 * std::max<int64_t>(width, 1)));
}

/// x (rows × k, fp32) · b (k × n, bf16) → rows × n fp32, in row chunks.
torch::Tensor bf16_rows_times(const torch::Tensor& x, const torch::Tensor& b) {
  const int64_t rows = x.size(0), per = chunk_rows(std::max(x.size(1), b.size(1)));
  auto y = torch::empty({rows, b.size(1)}, x.options());
  for (int64_t r0 = 0; r0 < rows; r0 += per) {
    const int64_t c = std::min(per, rows - r0);
    y.narrow(0, r0, c).copy_(at::mm(to_bf16(x.narrow(0, r0, c)), b));
  }
  return y;
}

/// x·weightᵀ + bias with bf16 operands and fp32 accumulation, fp32 result.
/// It saves the fp32 x (which the caller's graph keeps anyway: a layer's
/// output, the features) and converts in row chunks (chunk_rows), forward and
/// backward: a linear composed of autograd ops (`matmul(to_bf16(x), to_bf16(w).t())`)
/// kept a half-size bf16 copy of every linear input alive until backward and
/// allocated full-size bf16 products, so bf16 training took up to 19 % more
/// memory than fp32 (agender-baseline; docs/performance.md).
class Bf16Linear : public torch::autograd::Function<Bf16Linear> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    const int64_t k = x.size(-1), n = weight.size(0);
    auto y = bf16_rows_times(x.reshape({-1, k}), to_bf16(weight).t());
    if (bias.defined()) y.add_(bias);
    ctx->save_for_backward({x, weight});
    ctx->saved_data["bias"] = bias.defined();
    auto sizes = x.sizes().vec();
    sizes.back() = n;
    return y.view(sizes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const int64_t k = x.size(-1), n = weight.size(0);
    const torch::Tensor g = grads[0].reshape({-1, n});
    const torch::Tensor x2 = x.reshape({-1, k});
    const int64_t rows = g.size(0);
    torch::Tensor gx, gw, gbias;
    const bool want_x = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
    const torch::Tensor wb = want_x ? to_bf16(weight) : torch::Tensor();
    if (want_x) gx = torch::empty({rows, k}, x.options());
    if (want_w) gw = torch::zeros({n, k}, weight.options());
    // One pass over row chunks: g converted once per chunk for both products;
    // dW sums the chunks' bf16 products in fp32 (the chunks depend on the
    // sizes only: deterministic).
    const int64_t per = chunk_rows(std::max(k, n));
    for (int64_t r0 = 0; r0 < rows; r0 += per) {
      const int64_t c = std::min(per, rows - r0);
      const auto gb = to_bf16(g.narrow(0, r0, c));
      if (want_x) gx.narrow(0, r0, c).copy_(at::mm(gb, wb));
      if (want_w) gw.add_(at::mm(gb.t(), to_bf16(x2.narrow(0, r0, c))));
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) gbias = g.sum(0);
    return {want_x ? gx.view(x.sizes()) : gx, gw, gbias};
  }
};

/// bias + batch1 · batch2 with bf16 operands, fp32 result; like Bf16Linear
/// it saves the fp32 operands. Unlike it, not chunked: its buffers (the
/// extended CLSTM's per-position projections) have the same sizes every
/// step, so they come from the buffer pool.
class Bf16Baddbmm : public torch::autograd::Function<Bf16Baddbmm> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& bias, const torch::Tensor& batch1,
                               const torch::Tensor& batch2) {
    auto product = pooled_empty({batch1.size(0), batch1.size(1), batch2.size(2)},
                                batch1.options().dtype(torch::kBFloat16));
    at::bmm_out(product, pooled_convert(batch1, torch::kBFloat16), to_bf16(batch2));
    auto y = pooled_convert(product, torch::kFloat);
    y.add_(bias);
    ctx->save_for_backward({bias, batch1, batch2});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &bias = saved[0], &batch1 = saved[1], &batch2 = saved[2];
    const torch::Tensor& g = grads[0];
    const torch::Tensor gb = pooled_convert(g, torch::kBFloat16);
    torch::Tensor gbias, g1, g2;
    if (ctx->needs_input_grad(0)) gbias = at::sum_to(g, bias.sizes());
    if (ctx->needs_input_grad(1)) {
      auto p = pooled_empty(batch1.sizes(), gb.options());
      at::bmm_out(p, gb, to_bf16(batch2).transpose(1, 2));
      g1 = pooled_convert(p, torch::kFloat);
    }
    if (ctx->needs_input_grad(2)) {
      auto p = pooled_empty(batch2.sizes(), gb.options());
      at::bmm_out(p, pooled_convert(batch1, torch::kBFloat16).transpose(1, 2), gb);
      g2 = p.to(torch::kFloat);
    }
    return {gbias, g1, g2};
  }
};

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
  TORCH_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1),
              "linear: input (..., ", x.dim() >= 1 ? x.size(-1) : 0, ") does not match weight ", weight.sizes());
  return Bf16Linear::apply(x, weight, bias);
}

torch::Tensor baddbmm(const torch::Tensor& bias, const torch::Tensor& batch1,
                      const torch::Tensor& batch2) {
  if (!products_in_bf16(batch1)) return torch::baddbmm(bias, batch1, batch2);
  TORCH_CHECK(batch1.dim() == 3 && batch2.dim() == 3 && batch1.size(0) == batch2.size(0) &&
                  batch1.size(2) == batch2.size(1),
              "baddbmm: batch1 ", batch1.sizes(), " and batch2 ", batch2.sizes(), " do not multiply");
  return Bf16Baddbmm::apply(bias, batch1, batch2);
}

}  // namespace crnn::kernels

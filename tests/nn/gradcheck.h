#pragma once
// Central finite-difference gradient checks, in double precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace crnn::testing {

/// Compares the autograd gradient of the scalar `loss()` with respect to each
/// tensor in `tensors` against central differences (step eps). Checks every
/// element of small tensors and `max_per_tensor` seeded random elements of
/// larger ones. Tensors must be double and require grad.
inline void expect_gradients_match(const std::function<torch::Tensor()>& loss,
                                   const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                   double eps = 1e-6, double atol = 1e-7, double rtol = 1e-5,
                                   int64_t max_per_tensor = 24) {
  for (auto& [name, t] : tensors) {
    ASSERT_EQ(t.scalar_type(), torch::kDouble) << name;
    if (t.grad().defined()) t.mutable_grad().zero_();
  }
  loss().backward();
  auto gen = at::detail::createCPUGenerator(1234);
  for (auto& [name, t] : tensors) {
    ASSERT_TRUE(t.grad().defined()) << name << " received no gradient";
    auto analytic = t.grad().clone().reshape(-1);
    auto flat = t.data().view(-1);  // aliases t's storage
    const int64_t n = flat.numel();
    std::vector<int64_t> idx;
    if (n <= max_per_tensor) {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      auto perm = torch::randperm(n, gen, torch::kLong);
      for (int64_t i = 0; i < max_per_tensor; ++i) idx.push_back(perm[i].item<int64_t>());
    }
    torch::NoGradGuard no_grad;
    for (int64_t i : idx) {
      const double orig = flat[i].item<double>();
      flat[i] = orig + eps;
      const double plus = loss().item<double>();
      flat[i] = orig - eps;
      const double minus = loss().item<double>();
      flat[i] = orig;
      const double numeric = (plus - minus) / (2 * eps);
      const double a = analytic[i].item<double>();
      EXPECT_NEAR(a, numeric, atol + rtol * std::abs(numeric))
          << "gradient of " << name << "[" << i << "]";
    }
  }
}

/// A fixed random weighting of every output element, so that the scalar loss
/// depends on each output differently.
inline torch::Tensor weighted_sum(const torch::Tensor& y, int64_t seed = 7) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto w = torch::randn(y.sizes(), gen, y.options().requires_grad(false));
  return (y * w).sum();
}

}  // namespace crnn::testing

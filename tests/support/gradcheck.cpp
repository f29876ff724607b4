#include "tests/support/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "tests/support/tolerances.h"

namespace strata::test {

namespace {

double weighted_sum(const Tensor& y, const std::vector<double>& r) {
  std::vector<double> v = y.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, uint64_t seed, double step) {
  GradcheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = inputs[k];
    if (t.defined() && t.requires_grad()) {
      if (t.dtype() != DType::f64 || !t.is_leaf() || !t.is_contiguous()) {
        result.message = cat("gradcheck: input ", k, " (", t.describe(), ") must be a contiguous f64 leaf");
        return result;
      }
      t.impl().grad = nullptr;
    }
  }

  Tensor y = f(inputs);
  if (!y.requires_grad()) {
    result.message = "gradcheck: the output does not require grad (no input was recorded)";
    return result;
  }
  Generator generator(seed);
  Tensor r = Tensor::randn(y.shape(), generator, DType::f64);
  std::vector<double> weights = r.to_vector<double>();
  y.backward(r.to(y.dtype()));

  auto loss = [&]() {
    autograd::NoGradGuard no_grad;
    return weighted_sum(f(inputs), weights);
  };

  const double h = step;
  std::string failures;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic_t = x.grad();
    if (!analytic_t.defined()) {
      failures += cat("input ", k, ": backward produced no gradient\n");
      continue;
    }
    std::vector<double> analytic = analytic_t.to_vector<double>();
    double* data = static_cast<double*>(x.raw_data());
    int64_t n = x.numel();
    std::vector<double> numeric(static_cast<size_t>(n));
    std::vector<bool> kink(static_cast<size_t>(n), false);
    double f0 = loss();
    for (int64_t i = 0; i < n; ++i) {
      double saved = data[i];
      data[i] = saved + h;
      double fp = loss();
      data[i] = saved - h;
      double fm = loss();
      data[i] = saved;
      double central = (fp - fm) / (2 * h);
      double forward = (fp - f0) / h, backward = (f0 - fm) / h;
      numeric[static_cast<size_t>(i)] = central;
      kink[static_cast<size_t>(i)] = std::fabs(forward - backward) > 1e-3 * std::max(1.0, std::fabs(central));
    }
    double scale = 0;
    for (double v : numeric) scale = std::max(scale, std::fabs(v));
    int64_t bad = 0, skipped = 0;
    double worst_err = 0;
    int64_t worst = -1;
    for (int64_t i = 0; i < n; ++i) {
      size_t u = static_cast<size_t>(i);
      if (kink[u]) {
        ++skipped;
        continue;
      }
      double err = std::fabs(analytic[u] - numeric[u]);
      double allowed = kGradcheck.rtol * std::fabs(numeric[u]) + kGradcheck.atol * std::max(scale, 1e-300);
      if (err > allowed || std::isnan(analytic[u])) {
        ++bad;
        if (err > worst_err || worst < 0) {
          worst_err = err;
          worst = i;
        }
      }
      ++result.checked;
    }
    result.skipped_kinks += skipped;
    if (skipped * 20 > n) {
      failures += cat("input ", k, " (", x.describe(), "): ", skipped, " of ", n,
                      " elements sit on kinks; choose inputs away from non-differentiable points\n");
    }
    if (bad) {
      size_t w = static_cast<size_t>(worst);
      failures += cat("input ", k, " (", x.describe(), "): ", bad, " of ", n, " gradients wrong; worst at ", worst,
                      ": analytic ", analytic[w], ", numeric ", numeric[w], " (max |numeric| ", scale, ")\n");
    }
  }
  result.ok = failures.empty() && result.checked > 0;
  result.message = cat("gradcheck: ", result.checked, " elements checked, ", result.skipped_kinks,
                       " skipped at kinks\n", failures);
  return result;
}

}  // namespace strata::test

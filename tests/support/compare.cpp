#include "tests/support/compare.h"

#include <cmath>
#include <vector>

namespace strata::test {

namespace {

std::string coordinates(const Shape& shape, int64_t flat) {
  std::string s = "(";
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  for (size_t d = 0; d < idx.size(); ++d) {
    if (d) s += ',';
    s += std::to_string(idx[d]);
  }
  return s + ")";
}

}  // namespace

Comparison compare(const Tensor& actual, const Tensor& expected, Tolerance tolerance) {
  Comparison result;
  if (!actual.defined() || !expected.defined()) {
    result.message = "undefined tensor: actual " + actual.describe() + ", expected " + expected.describe();
    return result;
  }
  if (actual.shape() != expected.shape()) {
    result.message = "shape mismatch: actual " + actual.describe() + ", expected " + expected.describe();
    return result;
  }
  std::vector<double> a = actual.to_vector<double>();
  std::vector<double> b = expected.to_vector<double>();
  double scale = 0;
  for (double v : b) scale = std::max(scale, std::fabs(v));
  double worst_excess = -1;
  int64_t worst = -1, failures = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::fabs(a[i] - b[i]);
    bool nan_mismatch = std::isnan(a[i]) != std::isnan(b[i]);
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    double allowed = tolerance.rtol * std::fabs(b[i]) + tolerance.atol * scale;
    result.max_abs_error = std::max(result.max_abs_error, err);
    if (b[i] != 0) result.max_rel_error = std::max(result.max_rel_error, err / std::fabs(b[i]));
    double excess = nan_mismatch ? INFINITY : err - allowed;
    if (excess > 0) ++failures;
    if (excess > worst_excess || worst < 0) {
      worst_excess = excess;
      worst = static_cast<int64_t>(i);
    }
  }
  result.ok = failures == 0;
  result.message = cat(actual.describe(), ": max abs error ", result.max_abs_error, ", max rel error ",
                       result.max_rel_error, " (rtol ", tolerance.rtol, ", atol ", tolerance.atol, " x ", scale, ")");
  if (worst >= 0) {
    result.message += cat("; ", failures, " elements out of tolerance; worst at ", coordinates(actual.shape(), worst),
                          ": actual ", a[static_cast<size_t>(worst)], ", expected ", b[static_cast<size_t>(worst)]);
  }
  return result;
}

}  // namespace strata::test

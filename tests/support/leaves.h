// Test inputs: leaves (tensors that require grad) with reproducible values from a Generator. Every
// op test takes its inputs from here instead of writing its own helper.
//   leaf                 N(0, 1) * scale + shift
//   leaf_away_from_zero  N(0, 1) moved `gap` away from 0 (no relu-type kink within a finite-difference
//                        step of any element)
//   positive_leaf        uniform in [low, high), low > 0 (bases of fractional powers, variances)
//   separated_leaf       a random permutation of n evenly spaced values in [-1, 1), 2/n apart: no two
//                        elements within a finite-difference step of each other (no max-pool window sits
//                        on a tie), and distinct in f32 too
//   as_leaf              a detached copy of t converted to `dtype`, requiring grad
// All are f64 unless a dtype is given (gradchecks run in f64; the CUDA suite converts to f32 too).
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/tensor.h"

namespace strata::test {

inline Tensor as_leaf(const Tensor& t, DType dtype) {
  Tensor out = t.detach().to(dtype).clone();
  out.set_requires_grad(true);
  return out;
}

inline Tensor leaf(const Shape& shape, Generator& g, double scale = 1.0, double shift = 0.0,
                   DType dtype = DType::f64) {
  Tensor t = Tensor::randn(shape, g, DType::f64);
  if (scale != 1.0 || shift != 0.0) {
    std::vector<double> v = t.to_vector<double>();
    for (double& x : v) x = x * scale + shift;
    t = Tensor::from_vector(v, shape);
  }
  return as_leaf(t, dtype);
}

inline Tensor leaf_away_from_zero(const Shape& shape, Generator& g, double gap = 0.1, DType dtype = DType::f64) {
  std::vector<double> v = Tensor::randn(shape, g, DType::f64).to_vector<double>();
  for (double& x : v) x = x >= 0 ? x + gap : x - gap;
  return as_leaf(Tensor::from_vector(v, shape), dtype);
}

inline Tensor positive_leaf(const Shape& shape, Generator& g, double low, double high, DType dtype = DType::f64) {
  return as_leaf(Tensor::uniform(shape, low, high, g, DType::f64), dtype);
}

inline Tensor separated_leaf(const Shape& shape, Generator& g, DType dtype = DType::f64) {
  const int64_t n = shape_numel(shape);
  std::vector<double> keys = Tensor::uniform({n}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    values[size_t(order[size_t(i)])] = 2.0 * static_cast<double>(i - n / 2) / static_cast<double>(n);
  return as_leaf(Tensor::from_vector(values, shape), dtype);
}

}  // namespace strata::test

// Leaf tensors for gradient tests: random values that require a gradient, so the tests that build
// them all draw them the same way.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace strata::test {

// shape in `dtype` (f32 or f64): N(0, 1) draws from `generator` in that dtype, times `scale` plus
// `shift` (computed in double, then rounded to `dtype`), as a leaf that requires a gradient.
inline Tensor random_leaf(const Shape& shape, Generator& generator, DType dtype, double scale = 1.0,
                          double shift = 0.0) {
  Tensor t = Tensor::randn(shape, generator, dtype);
  if (scale != 1.0 || shift != 0.0) {
    std::vector<double> v = t.to_vector<double>();
    for (double& x : v) x = x * scale + shift;
    t = Tensor::from_vector(v, shape).to(dtype);
  }
  t.set_requires_grad(true);
  return t;
}

}  // namespace strata::test

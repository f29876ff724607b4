// The case table of argmax (tests/support/op_cases.h): inputs full of ties (values rounded to
// integers) and NaNs, checked against the definition on the CPU (tests/engine/test_argmax.cpp) and
// against the CPU on CUDA (tests/cuda/test_softmax.cpp). argmax has no gradient, so the inputs are
// plain tensors.
#pragma once

#include <cmath>
#include <limits>

#include "engine/ops/argmax.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases argmax_cases() {
  auto rounded = [](Shape shape) {
    return [shape](Generator& g) {
      std::vector<double> v = Tensor::randn(shape, g, DType::f64).to_vector<double>();
      for (double& e : v) e = std::round(e);
      return std::vector<Tensor>{Tensor::from_vector(v, shape)};
    };
  };
  auto with_nan = [](Generator&) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Rows: a tie, all equal, a NaN after a number, NaNs only after the first, a leading NaN.
    return std::vector<Tensor>{Tensor::from_vector<double>({1,   3,   3,   0,    //
                                                            5,   5,   5,   5,    //
                                                            0,   nan, 9,   nan,  //
                                                            2,   2,   nan, 2,    //
                                                            nan, 1,   2,   3},
                                                           {5, 4})};
  };
  auto f = [](const std::vector<Tensor>& in) { return argmax(in[0]); };
  return {{"argmax of rounded NHWC values (2,3,5,4)", rounded({2, 3, 5, 4}), f, 301},
          {"argmax of rounded (N,C) values (9,6)", rounded({9, 6}), f, 302},
          {"argmax of one channel (5,1)", rounded({5, 1}), f, 303},
          {"argmax of rank 1 (7)", rounded({7}), f, 304},
          {"argmax with NaNs", with_nan, f, 305}};
}

}  // namespace strata::test

// The case table of local_pod_distance (tests/support/op_cases.h), shared by the CPU gradient
// checks (tests/engine/test_pod.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_pod.cpp):
// square maps with and without a W mod s tail, non-square maps under per_axis windows (W > H and
// H > W), other scales, a batch > 1 and channels past the CPU kernel's 64-channel block. The teacher
// is a plain tensor (it gets no gradient), the student a leaf near it: close enough that the distance,
// and with it the rounding noise of the finite differences of the checked sum, stays small next to the
// gradients (70 channels at noise 0.5 put that noise at the gradcheck's tolerance).
#pragma once

#include <string>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/pod.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases pod_cases() {
  struct Shape_ {
    std::string name;
    Shape shape;  // (N,H,W,C)
    LocalPodOptions options;
  };
  const std::vector<Shape_> shapes = {
      {"square 8x8, C 3", {2, 8, 8, 3}, {}},
      {"square 9x9 (W mod 4 = 1), C 70", {2, 9, 9, 70}, {}},
      {"square 6x6, scales 1 and 3", {2, 6, 6, 2}, {{1, 3}, PodWindows::square}},
      {"per_axis 5x11 (W > H)", {2, 5, 11, 3}, {{1, 2, 4}, PodWindows::per_axis}},
      {"per_axis 10x6 (H > W)", {3, 10, 6, 2}, {{1, 2, 4}, PodWindows::per_axis}},
  };
  OpCases cases;
  uint64_t seed = 611;
  for (const Shape_& s : shapes) {
    const Shape shape = s.shape;
    cases.push_back({"local_pod_distance " + s.name,
                     [shape](Generator& g) {
                       Tensor teacher = Tensor::randn(shape, g, DType::f64);
                       Tensor noise = Tensor::randn(shape, g, DType::f64);
                       return std::vector<Tensor>{teacher, as_leaf(add(teacher, scale(noise, 0.1)), DType::f64)};
                     },
                     [options = s.options](const auto& in) { return local_pod_distance(in[0], in[1], options); },
                     seed++});
  }
  return cases;
}

}  // namespace strata::test

// The case tables of the losses (tests/support/op_cases.h), shared by the CPU gradient checks
// (tests/engine/test_losses.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_losses.cpp, which
// adds class counts that exercise each CUDA kernel path): every reduction, (N,H,W,C) and (N,C)
// scores, u8/i32/i64 labels with ignored pixels.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/losses.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline constexpr Reduction kAllReductions[] = {Reduction::none, Reduction::sum, Reduction::mean_valid,
                                               Reduction::mean_all};

// Labels cycling through every class in [0, classes) with about every third pixel set to
// ignore_index.
inline Tensor cycling_labels(const Shape& shape, int64_t classes, DType dtype, int64_t ignore_index = 255) {
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t k = static_cast<int64_t>(i * 5 + 3) % (classes + classes / 2 + 1);
    v[i] = k < classes ? k : ignore_index;
  }
  return Tensor::from_vector(v, shape).to(dtype);
}

// cross_entropy and nll: scores scaled so that the softmax is far from uniform; labels as above.
inline OpCases labelled_loss_cases() {
  struct Scores {
    std::string name;
    Shape shape;
    DType label_dtype;
    int64_t ignore_index;
  };
  const std::vector<Scores> scores = {{"(2,3,2,5) u8 labels", {2, 3, 2, 5}, DType::u8, 255},
                                      {"(7,4) i64 labels", {7, 4}, DType::i64, 255},
                                      {"(2,3,2,5) i32 labels, ignore_index -100", {2, 3, 2, 5}, DType::i32, -100}};
  OpCases cases;
  uint64_t seed = 201;
  for (const Scores& s : scores) {
    auto inputs = [s](Generator& g) {
      Shape label_shape(s.shape.begin(), s.shape.end() - 1);
      return std::vector<Tensor>{leaf(s.shape, g, 2.0),
                                 cycling_labels(label_shape, s.shape.back(), s.label_dtype, s.ignore_index)};
    };
    for (Reduction r : kAllReductions) {
      const std::string what = s.name + ", reduction " + to_string(r);
      const int64_t ignore = s.ignore_index;
      cases.push_back({"cross_entropy " + what, inputs,
                       [r, ignore](const auto& in) { return cross_entropy(in[0], in[1], r, ignore); }, seed++});
      cases.push_back(
          {"nll " + what, inputs, [r, ignore](const auto& in) { return nll(in[0], in[1], r, ignore); }, seed++});
    }
  }
  return cases;
}

// bce_with_logits (logits scaled by 3, targets in [0, 1)) and mse, gradients for both inputs.
inline OpCases elementwise_loss_cases() {
  const Shape shape = {2, 3, 2, 4};
  auto bce_inputs = [shape](Generator& g) {
    return std::vector<Tensor>{leaf(shape, g, 3.0),
                               as_leaf(Tensor::uniform(shape, 0.0, 1.0, g, DType::f64), DType::f64)};
  };
  auto mse_inputs = [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g), leaf(shape, g)}; };
  OpCases cases;
  uint64_t seed = 231;
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_all}) {
    cases.push_back({std::string("bce_with_logits, reduction ") + to_string(r), bce_inputs,
                     [r](const auto& in) { return bce_with_logits(in[0], in[1], r); }, seed++});
    cases.push_back({std::string("mse, reduction ") + to_string(r), mse_inputs,
                     [r](const auto& in) { return mse(in[0], in[1], r); }, seed++});
  }
  return cases;
}

}  // namespace strata::test

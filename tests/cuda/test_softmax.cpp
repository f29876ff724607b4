// softmax, log_softmax, logsumexp over channel ranges and argmax on CUDA against the CPU reference:
// the cases of tests/engine/softmax_cases.h and argmax_cases.h, and channel counts that cover each
// kernel path: rows staged in shared memory in tiles of 128 pixels (C = 13),
// 64 (C = 151, one input) and 32 (C = 151 with two inputs, C = 300 with one), and rows read from
// global memory (C = 300 with two inputs, C = 700); (2,33,35,21) spans 19 blocks.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/ops/argmax.h"
#include "engine/ops/softmax.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/argmax_cases.h"
#include "tests/engine/softmax_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {{2, 7, 5, 13},  {2, 9, 11, 151}, {1, 3, 37, 300}, {67, 700},
                                       {2, 33, 35, 21}, {5, 1},          {1, 21}};
  return s;
}

}  // namespace

TEST_CASE("cuda softmax family matches the CPU on every case of its tables", "[cpu]") {
  check_cuda_matches_cpu(test::softmax_cases());
  check_cuda_matches_cpu(test::logsumexp_cases());
}

TEST_CASE("cuda softmax and log_softmax match the CPU", "[cpu]") {
  Generator g(81);
  for (const Shape& shape : shapes()) {
    Tensor x = random_leaf(shape, g);
    check_cuda_matches_cpu("softmax " + shape_str(shape), [](const auto& in) { return softmax(in[0]); }, {x});
    check_cuda_matches_cpu("log_softmax " + shape_str(shape), [](const auto& in) { return log_softmax(in[0]); }, {x});
  }
}

TEST_CASE("cuda softmax family stays finite for large logits like the CPU", "[cpu]") {
  Tensor x = Tensor::from_vector<float>({1000.f, 999.f, -1000.f, 80.f, 88.f, 90.f}, {2, 3});
  x.set_requires_grad(true);
  check_cuda_matches_cpu("softmax", [](const auto& in) { return softmax(in[0]); }, {x});
  check_cuda_matches_cpu("log_softmax", [](const auto& in) { return log_softmax(in[0]); }, {x});
  check_cuda_matches_cpu("logsumexp", [](const auto& in) { return logsumexp(in[0], 0, 3); }, {x});
}

TEST_CASE("cuda logsumexp matches the CPU over ranges at the start, middle, end and full", "[cpu]") {
  Generator g(82);
  for (const Shape& shape : shapes()) {
    const int64_t C = shape.back();
    std::vector<std::pair<int64_t, int64_t>> ranges = {{0, C}, {0, (C + 1) / 2}, {C / 2, C}, {C / 3, C / 3 + 1}};
    if (C >= 4) ranges.push_back({1, C - 1});
    Tensor x = random_leaf(shape, g);
    for (auto [begin, end] : ranges) {
      check_cuda_matches_cpu("logsumexp " + shape_str(shape) + " [" + std::to_string(begin) + ", " +
                                 std::to_string(end) + ")",
                             [begin, end](const auto& in) { return logsumexp(in[0], begin, end); }, {x});
    }
  }
}

TEST_CASE("cuda argmax matches the CPU: ties go to the first channel, NaN is the maximum", "[cpu]") {
  check_cuda_matches_cpu(test::argmax_cases());
  Generator g(83);
  for (const Shape& shape : shapes()) {
    // Rounded values: many ties.
    std::vector<float> v = Tensor::randn(shape, g).to_vector<float>();
    for (float& e : v) e = std::round(e);
    Tensor x = Tensor::from_vector(v, shape);
    check_cuda_matches_cpu("argmax " + shape_str(shape), [](const auto& in) { return argmax(in[0]); }, {x});
  }
  CHECK(argmax(Tensor::from_vector<float>({4, 9, 9}, {3}).to(test::cuda_device())).dtype() == DType::i64);
}

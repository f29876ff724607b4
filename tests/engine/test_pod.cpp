// local_pod_distance: finite-difference gradients (f64) on the cases of tests/engine/pod_cases.h,
// PyTorch parity against tools/torchref/pod.py (f32, forward and student gradient: square maps with
// and without a W mod s tail, per_axis windows on non-square maps, batch > 1, 3 to 70 channels, a
// sample whose maps are identical), a closed form, the windows' tails, f32 accuracy where the two
// maps nearly cancel, thread-count determinism and bad input.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pod.h"
#include "engine/ops/reduce.h"
#include "tests/engine/pod_cases.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::kF64Scalar;
using strata::test::TorchCase;

namespace {

LocalPodOptions options_of(const TorchCase& c) {
  LocalPodOptions options;
  options.windows = c.text("windows") == "square" ? PodWindows::square : PodWindows::per_axis;
  options.scales.clear();
  const std::string& text = c.text("scales");
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    options.scales.push_back(std::stoll(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return options;
}

Tensor filled(const Shape& shape, double value, DType dtype = DType::f64) {
  return Tensor::from_vector(std::vector<double>(static_cast<size_t>(shape_numel(shape)), value), shape).to(dtype);
}

}  // namespace

TEST_CASE("local_pod_distance gradcheck: square and per_axis windows, tails, other scales", "[gradcheck]") {
  test::check_gradients(test::pod_cases());
}

TEST_CASE("local_pod_distance matches PyTorch: square and non-square maps, batch > 1, channel counts", "[torch]") {
  auto f = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return local_pod_distance(in[0], in[1], options_of(c));
  };
  for (const char* name : {"square_8", "square_9_c70", "square_33", "square_12_scales_1_3", "per_axis_6x11",
                           "per_axis_13x7", "per_axis_square_10", "identical_sample"}) {
    INFO(name);
    check_torch_case("pod", std::string("distance_") + name, {"teacher", "student"}, f);
  }
  // The identical sample's distance and gradient are exactly 0 there (PyTorch's norm backward).
  TorchCase identical("pod", "distance_identical_sample");
  CHECK(identical["out"].to_vector<float>()[0] == 0.0f);
}

TEST_CASE("local_pod_distance of constant maps: |a² − b²| times the root of the embedding's size", "[cpu]") {
  // D = a² − b² = 0.75 everywhere, so every profile value is 0.75. 8x8 maps, C = 3, scales 1, 2, 4:
  // each scale has s² windows of k = 8/s, each giving 2·k·C values: Σ_s 2·s·8·3 = 336 values.
  Tensor d = local_pod_distance(filled({2, 8, 8, 3}, 1.0), filled({2, 8, 8, 3}, 0.5));
  for (double v : d.to_vector<double>()) CHECK(v == approx(0.75 * std::sqrt(336.0), kF64Scalar));
  // per_axis 4x12 maps, C = 1: scale s has s² windows of (4/s)x(12/s) pixels, each with 4/s + 12/s
  // values: 16 + 4·8 + 16·4 = 112 values.
  LocalPodOptions per_axis{{1, 2, 4}, PodWindows::per_axis};
  Tensor wide = local_pod_distance(filled({1, 4, 12, 1}, 2.0), filled({1, 4, 12, 1}, 1.0), per_axis);
  CHECK(wide.to_vector<double>()[0] == approx(3.0 * std::sqrt(112.0), kF64Scalar));
}

TEST_CASE("local_pod_distance ignores the rows and columns past s·k, as PLOP's slices do", "[cpu]") {
  // Scale 2 alone on 9x9 maps: k = 4, windows cover rows and columns 0..7; row 8 and column 8 are in
  // no window. Changing the student there leaves the distance unchanged and their gradient is 0.
  Generator g(631);
  LocalPodOptions scale_2{{2}, PodWindows::square};
  Tensor teacher = Tensor::randn({2, 9, 9, 3}, g, DType::f64);
  Tensor student = test::as_leaf(Tensor::randn({2, 9, 9, 3}, g, DType::f64), DType::f64);
  Tensor d = local_pod_distance(teacher, student, scale_2);
  sum(d).backward();
  std::vector<double> grad = student.grad().to_vector<double>();
  std::vector<double> moved = student.detach().to_vector<double>();
  int64_t zero = 0, nonzero = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t r = 0; r < 9; ++r) {
      for (int64_t q = 0; q < 9; ++q) {
        for (int64_t c = 0; c < 3; ++c) {
          const size_t i = static_cast<size_t>(((n * 9 + r) * 9 + q) * 3 + c);
          if (r == 8 || q == 8) {
            zero += grad[i] == 0.0;
            moved[i] += 10.0;
          } else {
            nonzero += grad[i] != 0.0;
          }
        }
      }
    }
  }
  CHECK(zero == 2 * 17 * 3);
  CHECK(nonzero == 2 * 64 * 3);
  Tensor d_moved = local_pod_distance(teacher, Tensor::from_vector(moved, student.shape()), scale_2);
  CHECK(std::memcmp(d.raw_data(), d_moved.raw_data(), d.nbytes()) == 0);
}

TEST_CASE("local_pod_distance in f32 stays accurate when the two maps nearly cancel", "[cpu]") {
  // b = a (1 + 1e-6), about 8 f32 ulps from a: the squares a² and b² agree to 6 digits, so
  // subtracting f32 squares (or f32 embeddings, as PyTorch's f32 composition does) keeps about one of
  // f32's 7 digits. The op forms (a − b)(a + b) in double from the f32 inputs and sums in double: its
  // f32 result is the f64 result of the same inputs to kF32. (With the squares subtracted in f32 this
  // fails: checked by editing the kernel.)
  Generator g(641);
  Tensor a = Tensor::randn({2, 16, 16, 8}, g, DType::f64).to(DType::f32);
  Tensor b = scale(a, 1.0 + 1e-6);
  Tensor exact = local_pod_distance(a.to(DType::f64), b.to(DType::f64));
  CHECK_CLOSE(local_pod_distance(a, b).to(DType::f64), exact, test::kF32);
}

TEST_CASE("local_pod_distance gives the teacher no gradient", "[cpu]") {
  Generator g(651);
  Tensor teacher = test::leaf({1, 4, 4, 2}, g);
  Tensor student = test::leaf({1, 4, 4, 2}, g);
  sum(local_pod_distance(teacher, student)).backward();
  CHECK_FALSE(teacher.grad().defined());
  CHECK(student.grad().defined());
}

TEST_CASE("local_pod_distance is bit-identical on 1 and 2 threads", "[cpu]") {
  Generator g(661);
  Tensor teacher = Tensor::randn({2, 20, 20, 150}, g);
  Tensor student = Tensor::randn({2, 20, 20, 150}, g);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor x = student.clone();
    x.set_requires_grad(true);
    Tensor d = local_pod_distance(teacher, x);
    sum(d).backward();
    return std::vector<Tensor>{d, x.grad()};
  };
  const int previous = omp_get_max_threads();
  std::vector<Tensor> one = run(1), two = run(2);
  omp_set_num_threads(previous);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    CHECK(std::memcmp(one[i].raw_data(), two[i].raw_data(), one[i].nbytes()) == 0);
  }
}

TEST_CASE("local_pod_distance rejects bad input clearly", "[cpu]") {
  Tensor wide = Tensor::zeros({2, 5, 11, 3});
  CHECK_THROWS_WITH(local_pod_distance(wide, wide),
                    Catch::Contains("local_pod_distance") && Catch::Contains("f32[2,5,11,3]") &&
                        Catch::Contains("H = 5 != W = 11") && Catch::Contains("per_axis"));
  Tensor square = Tensor::zeros({2, 4, 4, 3});
  CHECK_THROWS_WITH(local_pod_distance(square, Tensor::zeros({2, 4, 4, 5})),
                    Catch::Contains("local_pod_distance") && Catch::Contains("f32[2,4,4,5]"));
  CHECK_THROWS_WITH(local_pod_distance(square, square.to(DType::f64)), Catch::Contains("local_pod_distance"));
  CHECK_THROWS_WITH(local_pod_distance(Tensor::zeros({4, 4, 3}), Tensor::zeros({4, 4, 3})),
                    Catch::Contains("local_pod_distance") && Catch::Contains("(N,H,W,C)"));
  CHECK_THROWS_WITH(local_pod_distance(square, square, {{1, 0}, PodWindows::square}),
                    Catch::Contains("scale 0") && Catch::Contains(">= 1"));
  CHECK_THROWS_WITH(local_pod_distance(square, square, {{1, 8}, PodWindows::square}),
                    Catch::Contains("scale 8") && Catch::Contains("f32[2,4,4,3]"));
  CHECK_THROWS_WITH(local_pod_distance(square, square, {{}, PodWindows::square}), Catch::Contains("scales"));
  CHECK_THROWS_WITH(local_pod_distance(square, square, {{1, 1, 1, 1, 1, 1, 1, 1, 1}, PodWindows::square}),
                    Catch::Contains("scales"));
  CHECK_THROWS_WITH(local_pod_distance(Tensor::zeros({0, 4, 4, 3}), Tensor::zeros({0, 4, 4, 3})),
                    Catch::Contains("empty"));
  // per_axis: a scale larger than the shorter side is refused (its windows would be empty).
  CHECK_THROWS_WITH(
      local_pod_distance(Tensor::zeros({1, 3, 11, 1}), Tensor::zeros({1, 3, 11, 1}), {{1, 2, 4}, PodWindows::per_axis}),
      Catch::Contains("scale 4"));
}

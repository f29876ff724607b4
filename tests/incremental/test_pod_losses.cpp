// PLOP's Local POD over a list of maps and its logits folding (incremental/losses.h, SPEC-continual.md
// §3.7 (b)): parity with tools/torchref/pod.py (six maps at PLOP's layout scaled down, folded logits,
// square and per_axis windows, factors <= 0), f64 finite-difference gradients, the reference's
// divisor (a skipped map still counts), the schedule factor, and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pod.h"
#include "incremental/losses.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/leaves.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::kF64Scalar;
using strata::test::leaf;
using strata::test::TorchCase;

namespace {

std::vector<double> numbers(const std::string& text) {
  std::vector<double> out;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    out.push_back(std::stod(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("local_pod matches the PyTorch formula: six maps, folded logits, square and per_axis, skipped maps",
          "[torch]") {
  std::vector<std::string> inputs;
  for (int k = 0; k < 6; ++k) inputs.push_back("teacher" + std::to_string(k));
  for (int k = 0; k < 6; ++k) inputs.push_back("student" + std::to_string(k));
  auto f = [](const std::vector<Tensor>& in, const TorchCase& c) {
    LocalPodOptions options;
    options.windows = c.text("windows") == "square" ? PodWindows::square : PodWindows::per_axis;
    return local_pod({in.begin(), in.begin() + 6}, {in.begin() + 6, in.end()}, numbers(c.text("factors")),
                     c.param("schedule"), options);
  };
  for (const char* name :
       {"local_pod_square_plop", "local_pod_square_skipped", "local_pod_per_axis_plop", "local_pod_per_axis_skipped"}) {
    INFO(name);
    check_torch_case("pod", name, inputs, f);
  }
}

TEST_CASE("fold_new_channels_into_background matches PyTorch: C_old = 1, between, and C_tot", "[torch]") {
  auto f = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return fold_new_channels_into_background(in[0], static_cast<int64_t>(c.param("old_channels")));
  };
  for (const char* name : {"fold_1", "fold_4", "fold_7"}) check_torch_case("pod", name, {"logits"}, f);
}

TEST_CASE("local_pod gradcheck in f64: several maps, folded logits, per_axis windows", "[gradcheck]") {
  // Students near their teachers: a small distance keeps the finite differences' rounding noise small
  // next to the gradients. Map 1 (factor 0) is skipped and gets no gradient: it is not checked.
  Generator g(701);
  auto near = [&g](const Tensor& teacher) {
    return test::as_leaf(add(teacher, scale(Tensor::randn(teacher.shape(), g, DType::f64), 0.1)), DType::f64);
  };
  const Tensor t0 = Tensor::randn({2, 8, 8, 3}, g, DType::f64), t1 = Tensor::randn({2, 4, 4, 5}, g, DType::f64);
  const Tensor t2 = Tensor::randn({2, 4, 4, 3}, g, DType::f64);
  const Tensor s1 = Tensor::randn({2, 4, 4, 5}, g, DType::f64);
  // The logits: three old channels near the teacher's, three new ones near 0 (folded into channel 0).
  const Tensor new_channels = scale(Tensor::randn({2, 4, 4, 3}, g, DType::f64), 0.1);
  const Tensor s2 = test::as_leaf(concat({near(t2).detach(), new_channels}), DType::f64);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return local_pod({t0, t1, t2}, {in[0], s1, in[1]}, {0.3, 0.0, 0.7}, 1.5);
      },
      {near(t0), s2});
  const Tensor wide = Tensor::randn({2, 4, 9, 2}, g, DType::f64);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return local_pod({wide}, in, {0.5}, 2.0, {{1, 2, 4}, PodWindows::per_axis});
      },
      {near(wide)});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return fold_new_channels_into_background(in[0], 3); },
                  {leaf({2, 3, 2, 7}, g)});
}

TEST_CASE("local_pod divides by every map, skipped ones included, and scales by factor and schedule", "[cpu]") {
  Generator g(711);
  Tensor t0 = Tensor::randn({3, 8, 8, 4}, g, DType::f64), s0 = Tensor::randn({3, 8, 8, 4}, g, DType::f64);
  Tensor t1 = Tensor::randn({3, 4, 4, 2}, g, DType::f64), s1 = Tensor::randn({3, 4, 4, 2}, g, DType::f64);
  std::vector<double> d0 = local_pod_distance(t0, s0).to_vector<double>();
  const double mean_d0 = (d0[0] + d0[1] + d0[2]) / 3.0;
  // Map 1 with factor 0 (and then -1) adds nothing but counts: (0.2 · 3 · mean d0) / 2.
  for (double skipped : {0.0, -1.0}) {
    const double loss = local_pod({t0, t1}, {s0, s1}, {0.2, skipped}, 3.0).item();
    CHECK(loss == approx(0.2 * 3.0 * mean_d0 / 2.0, kF64Scalar));
  }
  // Nothing contributes: a zero scalar without a graph.
  Tensor student = leaf({3, 4, 4, 2}, g);
  Tensor none = local_pod({t1}, {student}, {0.0}, 3.0);
  CHECK(none.dim() == 0);
  CHECK(none.item() == 0.0);
  CHECK_FALSE(none.requires_grad());
}

TEST_CASE("local_pod folds the student's new logit channels into background before comparing", "[cpu]") {
  Generator g(721);
  Tensor teacher = Tensor::randn({2, 4, 4, 3}, g, DType::f64);
  Tensor student = Tensor::randn({2, 4, 4, 5}, g, DType::f64);
  const double folded = local_pod({teacher}, {student}, {1.0}, 1.0).item();
  const double by_hand = local_pod({teacher}, {fold_new_channels_into_background(student, 3)}, {1.0}, 1.0).item();
  CHECK(folded == by_hand);
  // The fold: channel 0 = z_0 + z_3 + z_4, channels 1 and 2 kept.
  std::vector<double> z = student.to_vector<double>();
  std::vector<double> f = fold_new_channels_into_background(student, 3).to_vector<double>();
  for (size_t p = 0; p < 2 * 4 * 4; ++p) {
    CHECK(f[p * 3] == approx(z[p * 5] + z[p * 5 + 3] + z[p * 5 + 4], kF64Scalar));
    CHECK(f[p * 3 + 1] == z[p * 5 + 1]);
    CHECK(f[p * 3 + 2] == z[p * 5 + 2]);
  }
}

TEST_CASE("pod_schedule_factor is sqrt(C_tot / N_new)", "[cpu]") {
  CHECK(pod_schedule_factor(17, 1) == approx(std::sqrt(17.0), kF64Scalar));  // VOC 15-1, step 1
  CHECK(pod_schedule_factor(21, 5) == approx(std::sqrt(21.0 / 5.0), kF64Scalar));
  CHECK_THROWS_WITH(pod_schedule_factor(5, 0), Catch::Contains("new_classes 0"));
  CHECK_THROWS_WITH(pod_schedule_factor(5, 6), Catch::Contains("new_classes 6"));
}

TEST_CASE("local_pod and the fold reject bad input clearly", "[cpu]") {
  Tensor m = Tensor::zeros({2, 4, 4, 3});
  CHECK_THROWS_WITH(local_pod({}, {}, {}, 1.0), Catch::Contains("local_pod") && Catch::Contains("no maps"));
  CHECK_THROWS_WITH(local_pod({m, m}, {m}, {1.0, 1.0}, 1.0), Catch::Contains("2 teacher maps, 1 student maps"));
  CHECK_THROWS_WITH(local_pod({m}, {m}, {1.0, 1.0}, 1.0), Catch::Contains("2 factors"));
  // Only the last map may differ in channels, and only with more in the student's.
  Tensor more = Tensor::zeros({2, 4, 4, 5});
  CHECK_THROWS_WITH(local_pod({m, m}, {more, m}, {1.0, 1.0}, 1.0),
                    Catch::Contains("map 0") && Catch::Contains("f32[2,4,4,5]"));
  CHECK_THROWS_WITH(local_pod({more}, {m}, {1.0}, 1.0), Catch::Contains("map 0") && Catch::Contains("f32[2,4,4,3]"));
  CHECK_THROWS_WITH(local_pod({m}, {m}, {1.0}, -1.0), Catch::Contains("schedule_factor -1"));
  CHECK_THROWS_WITH(local_pod({m}, {m}, {std::nan("")}, 1.0), Catch::Contains("factor nan"));
  Tensor wide = Tensor::zeros({2, 4, 8, 3});
  CHECK_THROWS_WITH(local_pod({wide}, {wide}, {1.0}, 1.0), Catch::Contains("H = 4 != W = 8"));
  CHECK_THROWS_WITH(fold_new_channels_into_background(m, 0), Catch::Contains("old_channels 0"));
  CHECK_THROWS_WITH(fold_new_channels_into_background(m, 4), Catch::Contains("old_channels 4"));
}

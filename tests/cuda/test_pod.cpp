// local_pod_distance on CUDA against the CPU reference: the cases of tests/engine/pod_cases.h (f32
// and f64, distances and the student's gradient), PLOP's map sizes scaled down (a W = 33 tail, 150
// logit channels, a batch of 3), no host synchronisation in forward or backward, and
// incremental::local_pod over several maps with folded logits.
#include <catch2/catch.hpp>

#include "engine/ops/pod.h"
#include "engine/ops/reduce.h"
#include "incremental/losses.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/cuda/cuda_device.h"
#include "tests/engine/pod_cases.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using test::check_cuda_matches_cpu;

TEST_CASE("cuda local_pod_distance matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::pod_cases());
}

TEST_CASE("cuda local_pod_distance matches the CPU on larger maps, tails and many channels", "[cpu]") {
  struct Case {
    const char* what;
    Shape shape;
    LocalPodOptions options;
  };
  const Case cases[] = {{"square 33x33, C 40 (tails at scales 2 and 4)", {2, 33, 33, 40}, {}},
                        {"square 16x16, C 150 (logits)", {3, 16, 16, 150}, {}},
                        {"per_axis 12x20, C 9", {2, 12, 20, 9}, {{1, 2, 4}, PodWindows::per_axis}}};
  Generator g(671);
  for (const Case& c : cases) {
    Tensor teacher = Tensor::randn(c.shape, g);
    Tensor student = test::as_leaf(Tensor::randn(c.shape, g), DType::f32);
    check_cuda_matches_cpu(c.what,
                           [options = c.options](const auto& in) { return local_pod_distance(in[0], in[1], options); },
                           {teacher, student});
  }
}

#if STRATA_CUDA_EMULATION_FOR_TESTS
TEST_CASE("cuda local_pod_distance never makes the host wait", "[cpu]") {
  Generator g(681);
  Tensor teacher = Tensor::randn({2, 8, 8, 5}, g).to(test::cuda_device());
  Tensor student = Tensor::randn({2, 8, 8, 5}, g).to(test::cuda_device());
  student.set_requires_grad(true);
  const uint64_t before = cudaemu::host_synchronization_count();
  Tensor loss = mean(local_pod_distance(teacher, student));
  loss.backward();
  CHECK(cudaemu::host_synchronization_count() == before);
  CHECK(student.grad().defined());
}
#endif

TEST_CASE("cuda incremental::local_pod matches the CPU: several maps, folded logits, a skipped map", "[cpu]") {
  Generator g(691);
  const Shape shapes[] = {{2, 8, 8, 6}, {2, 4, 4, 12}, {2, 4, 4, 4}};
  std::vector<Tensor> inputs;
  for (const Shape& s : shapes) inputs.push_back(Tensor::randn(s, g));
  for (const Shape& s : shapes) inputs.push_back(test::as_leaf(Tensor::randn(s, g), DType::f32));
  inputs[4] = inputs[4].detach();  // map 1 is skipped (factor 0): no gradient to compare
  inputs[5] = test::as_leaf(Tensor::randn({2, 4, 4, 7}, g), DType::f32);  // logits: 3 new channels
  check_cuda_matches_cpu(
      "local_pod",
      [](const auto& in) {
        return incremental::local_pod({in[0], in[1], in[2]}, {in[3], in[4], in[5]}, {0.01, 0.0, 0.0005},
                                      incremental::pod_schedule_factor(7, 3));
      },
      inputs);
}

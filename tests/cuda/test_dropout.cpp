// dropout on CUDA: the mask equals the CPU's bit for bit for the same generator seed and offset
// (kernels/common/dropout.h), including offsets that do not start a Philox block and tensors that
// end inside one; outputs and gradients match the CPU on the cases of tests/engine/dropout_cases.h
// and over many blocks.
#include <catch2/catch.hpp>

#include "engine/ops/dropout.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/dropout_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda dropout draws the CPU's mask bit for bit", "[cpu]") {
  const Device& gpu = test::cuda_device();
  for (DType dtype : {DType::f32, DType::f64}) {
    for (uint64_t offset : {0, 1, 2, 3, 5, 1000003}) {
      for (int64_t n : {1, 3, 4, 7, 4099, 70001}) {
        for (double p : {0.1, 0.5, 0.9}) {
          INFO(dtype_name(dtype) << ", offset " << offset << ", n " << n << ", p " << p);
          Tensor ones = Tensor::ones({n}, dtype);
          Generator cpu_generator(0x9E3779B97F4A7C15ull), gpu_generator(0x9E3779B97F4A7C15ull);
          cpu_generator.set_offset(offset);
          gpu_generator.set_offset(offset);
          Tensor y_cpu = dropout(ones, p, true, cpu_generator);
          Tensor y_gpu = dropout(ones.to(gpu), p, true, gpu_generator);
          // Kept ones are scaled by the same 1 / (1 - p) rounded to T: equal vectors mean equal masks.
          CHECK(y_gpu.to_vector<double>() == y_cpu.to_vector<double>());
          CHECK(gpu_generator.offset() == cpu_generator.offset());
        }
      }
    }
  }
}

TEST_CASE("cuda dropout matches the CPU forward and backward", "[cpu]") {
  check_cuda_matches_cpu(test::dropout_cases());
  Generator g(71);
  for (double p : {0.3, 0.7}) {
    auto f = [p](const std::vector<Tensor>& in) {
      Generator generator(123);
      generator.set_offset(7);
      return dropout(in[0], p, true, generator);
    };
    check_cuda_matches_cpu("dropout over many blocks", f, {random_leaf({1, 1, 1, 200001}, g)});
  }
  Generator unused(1);
  Tensor x = Tensor::randn({3, 4}, g).to(test::cuda_device());
  CHECK(dropout(x, 0.5, false, unused).same(x));
  CHECK(unused.offset() == 0);
}

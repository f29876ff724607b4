// Tensor: creation, views, casts, printing, memory counters and misuse errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/ops/elementwise.h"
#include "engine/tensor.h"
#include "tests/support/torch_reference.h"

using namespace strata;

TEST_CASE("tensor creation: shapes, strides, fills and host data", "[cpu]") {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  CHECK(t.dim() == 4);
  CHECK(t.numel() == 120);
  CHECK(t.strides() == Shape{60, 20, 5, 1});
  CHECK(t.is_contiguous());
  CHECK(t.size(-1) == 5);
  CHECK(t.describe() == "f32[2,3,4,5] on cpu");
  CHECK(Tensor::ones({3}).to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(Tensor::full({2}, 2.5, DType::f64).to_vector<double>() == std::vector<double>{2.5, 2.5});
  CHECK(Tensor::scalar(4.0).item() == 4.0);
  Tensor d = Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(d.dtype() == DType::i64);
  CHECK(d.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(Tensor::zeros({0, 3}).numel() == 0);
}

TEST_CASE("tensor random creation is seeded and has the right moments", "[cpu]") {
  Generator a(7), b(7), c(8);
  std::vector<float> x = Tensor::randn({1000}, a).to_vector<float>();
  CHECK(x == Tensor::randn({1000}, b).to_vector<float>());
  CHECK(x != Tensor::randn({1000}, c).to_vector<float>());
  CHECK(a.offset() == 1000);
  double mean = 0, var = 0;
  Generator g(9);
  std::vector<double> z = Tensor::randn({100000}, g, DType::f64).to_vector<double>();
  for (double v : z) mean += v;
  mean /= static_cast<double>(z.size());
  for (double v : z) var += (v - mean) * (v - mean);
  var /= static_cast<double>(z.size());
  CHECK(std::fabs(mean) < 0.02);
  CHECK(std::fabs(var - 1) < 0.02);
  std::vector<float> u = Tensor::uniform({10000}, -2, 3, g).to_vector<float>();
  for (float v : u) REQUIRE((v >= -2 && v < 3));
}

TEST_CASE("tensor views: reshape shares storage, narrow_channels and permute are strided", "[cpu]") {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {1, 2, 2, 3});
  Tensor r = t.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 3});
  CHECK(r.raw_data() == t.raw_data());
  Tensor n = t.narrow_channels(1, 3);
  CHECK(n.shape() == Shape{1, 2, 2, 2});
  CHECK_FALSE(n.is_contiguous());
  CHECK(n.to_vector<float>() == std::vector<float>{1, 2, 4, 5, 7, 8, 10, 11});
  CHECK(n.contiguous().is_contiguous());
  Tensor nchw = nhwc_to_nchw(t);
  CHECK(nchw.shape() == Shape{1, 3, 2, 2});
  CHECK(nchw.to_vector<float>() == std::vector<float>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
  CHECK(nchw_to_nhwc(nchw).to_vector<float>() == t.to_vector<float>());
  Tensor filled = Tensor::zeros({1, 2, 2, 3});
  filled.narrow_channels(2, 3).fill_(7);
  CHECK(filled.to_vector<float>() == std::vector<float>{0, 0, 7, 0, 0, 7, 0, 0, 7, 0, 0, 7});
}

TEST_CASE("tensor casts round half floats to nearest even and match PyTorch", "[torch]") {
  test::TorchCase c("tensor", "casts");
  Tensor x = c["x"];
  Tensor bf = x.to(DType::bf16), hf = x.to(DType::f16);
  std::vector<int32_t> bf_bits, hf_bits;
  for (int64_t i = 0; i < x.numel(); ++i) {
    bf_bits.push_back(bf.data<bf16>()[i].bits);
    hf_bits.push_back(hf.data<f16>()[i].bits);
  }
  CHECK(bf_bits == c["bf16_bits"].to_vector<int32_t>());
  CHECK(hf_bits == c["f16_bits"].to_vector<int32_t>());
  CHECK(c["finite"].to(DType::i64).to_vector<int64_t>() == c["as_i64"].to_vector<int64_t>());
}

TEST_CASE("tensor printing is readable and elides long dimensions", "[cpu]") {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.str() == "f32[2,3] on cpu\n[[1, 2, 3],\n [4, 5, 6]]");
  Tensor big = Tensor::zeros({100}, DType::i32);
  CHECK(big.str() == "i32[100] on cpu\n[0, 0, 0, ..., 0, 0, 0]");
  Tensor p = Tensor::ones({2});
  p.set_requires_grad(true);
  CHECK_THAT(p.str(), Catch::StartsWith("f32[2] on cpu, requires_grad"));
}

TEST_CASE("the CPU allocator counts current and peak bytes", "[cpu]") {
  MemoryStats before = memory_stats();
  reset_peak_memory();
  {
    Tensor a = Tensor::empty({1024});  // 4 KiB
    Tensor b = Tensor::empty({2048});  // 8 KiB
    CHECK(memory_stats().allocated_bytes - before.allocated_bytes == 12288);
    CHECK(reinterpret_cast<uintptr_t>(a.raw_data()) % 64 == 0);
  }
  MemoryStats after = memory_stats();
  CHECK(after.allocated_bytes == before.allocated_bytes);
  CHECK(after.peak_allocated_bytes - before.allocated_bytes >= 12288);
  reset_peak_memory();
  CHECK(memory_stats().peak_allocated_bytes == after.allocated_bytes);
}

TEST_CASE("tensor misuse throws clear errors", "[cpu]") {
  Tensor t = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH(t.data<double>(), Catch::Contains("data<f64>") && Catch::Contains("f32[2,3]"));
  CHECK_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("6 elements"));
  CHECK_THROWS_WITH(t.size(2), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(t.item(), Catch::Contains("expected 1"));
  CHECK_THROWS_WITH(t.to(Device{Device::Type::cuda, 0, nullptr}), Catch::Contains("open_cuda_device"));
  if (std::string(cuda_backend()).empty()) {
    CHECK_THROWS_WITH(open_cuda_device(0), Catch::Contains("no CUDA backend"));
  }
  CHECK_THROWS_WITH(Tensor::from_vector<float>({1, 2}, {3}), Catch::Contains("2 values given"));
  CHECK_THROWS_WITH(Tensor::zeros({2, -1}), Catch::Contains("negative dimension"));
  CHECK_THROWS_WITH(t.narrow_channels(2, 5), Catch::Contains("outside the 3 channels"));
  CHECK_THROWS_WITH(Tensor::zeros({2}, DType::i32).set_requires_grad(true), Catch::Contains("not floating"));
  Tensor y = Tensor::ones({2});
  y.set_requires_grad(true);
  Tensor z = scale(y, 2.0);
  CHECK_THROWS_WITH(z.set_requires_grad(false), Catch::Contains("only leaves"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined tensor"));
}

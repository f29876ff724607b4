// Tensors on the CUDA device: copies both ways in every dtype, fills, strided copies and casts
// (bit-identical with the CPU), allocator counters, and the errors for misuse.
#include <catch2/catch.hpp>

#include "engine/cuda/context.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/device_dispatch.h"
#include "engine/tensor.h"
#include "tests/cuda/cuda_device.h"

using namespace strata;
using test::cuda_device;

TEST_CASE("cuda device: the context names its device and backend", "[cpu]") {
  const Device& gpu = cuda_device();
  CHECK(gpu.is_cuda());
  CHECK(gpu.str() == "cuda:0");
  CHECK(std::string(cuda_backend()) == (STRATA_CUDA_EMULATION_FOR_TESTS ? "emulated" : "real"));
  CHECK_THAT(cuda_context(gpu).name(), Catch::StartsWith("cuda:0"));
  CHECK_THROWS_WITH(open_cuda_device(7), Catch::Contains("CUDA device"));
  // An emulated device says so wherever it is shown; the CPU and a real device do not.
  CHECK(is_emulated(gpu) == STRATA_CUDA_EMULATION_FOR_TESTS);
  CHECK_FALSE(is_emulated(Device::cpu()));
  CHECK(device_label(Device::cpu()) == "cpu");
  CHECK(emulated_device_warning(Device::cpu(), "cpu").empty());
  if (STRATA_CUDA_EMULATION_FOR_TESTS) {
    CHECK(device_label(gpu) == "cuda:0 (emulated on the CPU)");
    CHECK_THAT(emulated_device_warning(gpu, "cuda"),
               Catch::StartsWith("warning: --device cuda: this build's CUDA backend is emulated on the CPU"));
  } else {
    CHECK(device_label(gpu) == "cuda:0");
    CHECK(emulated_device_warning(gpu, "cuda").empty());
  }
}

TEST_CASE("cuda tensors round-trip through the host in every dtype", "[cpu]") {
  const Device& gpu = cuda_device();
  Generator g(1);
  Tensor x = Tensor::randn({3, 5, 7}, g);
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor host = x.to(dtype);
    Tensor device = host.to(gpu);
    CHECK(device.device() == gpu);
    CHECK(device.shape() == host.shape());
    Tensor back = device.to(Device::cpu());
    CHECK(std::memcmp(back.raw_data(), host.raw_data(), host.nbytes()) == 0);
  }
}

TEST_CASE("cuda zeros, full and fill_ write every element", "[cpu]") {
  const Device& gpu = cuda_device();
  CHECK(Tensor::zeros({4, 3}, DType::f32, gpu).to_vector<float>() == std::vector<float>(12, 0.0f));
  CHECK(Tensor::full({5}, 2.5, DType::f64, gpu).to_vector<double>() == std::vector<double>(5, 2.5));
  CHECK(Tensor::full({3}, 300, DType::i64, gpu).to_vector<int64_t>() == std::vector<int64_t>(3, 300));
  Tensor h = Tensor::full({2}, 1.0 / 3.0, DType::bf16, gpu).to(Device::cpu());
  CHECK(h.data<bf16>()[0].bits == float_to_bf16(1.0f / 3.0f).bits);
}

TEST_CASE("cuda strided copies and casts equal the CPU's bit for bit", "[cpu]") {
  const Device& gpu = cuda_device();
  Generator g(2);
  Tensor x = Tensor::randn({2, 3, 4, 6}, g).to(DType::f64);
  Tensor xg = x.to(gpu);
  // A channel slice (strided view) made contiguous on the device.
  std::vector<double> cpu_view = x.narrow_channels(1, 5).contiguous().to_vector<double>();
  CHECK(xg.narrow_channels(1, 5).contiguous().to_vector<double>() == cpu_view);
  // A permutation (NHWC -> NCHW) and casts to every type.
  CHECK(xg.permute({0, 3, 1, 2}).contiguous().to_vector<double>() == x.permute({0, 3, 1, 2}).contiguous().to_vector<double>());
  for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor on_gpu = xg.to(dtype).to(Device::cpu()), on_cpu = x.to(dtype);
    CHECK(std::memcmp(on_gpu.raw_data(), on_cpu.raw_data(), on_cpu.nbytes()) == 0);
  }
  Tensor dst = Tensor::zeros({2, 3, 4, 4}, DType::f32, gpu);
  dst.copy_(x.narrow_channels(2, 6));
  CHECK(dst.to_vector<float>() == x.narrow_channels(2, 6).contiguous().to(DType::f32).to_vector<float>());
}

TEST_CASE("cuda allocations are counted by the device allocator, not the host's", "[cpu]") {
  const Device& gpu = cuda_device();
  MemoryStats host_before = memory_stats(), before = memory_stats(gpu);
  {
    Tensor t = Tensor::empty({1024}, DType::f32, gpu);
    CHECK(memory_stats(gpu).allocated_bytes - before.allocated_bytes == 4096);
    CHECK(memory_stats().allocated_bytes == host_before.allocated_bytes);
  }
  CHECK(memory_stats(gpu).allocated_bytes == before.allocated_bytes);
}

namespace {

// An op written with a CPU kernel only, as every op starts: on a CUDA tensor it must refuse.
Tensor cpu_only_op(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_cpu("cpu_only_op", x, [&](auto tag, const auto&) {
    using T = decltype(tag);
    for (int64_t i = 0; i < x.numel(); ++i) y.data<T>()[i] = x.data<T>()[i];
  });
  return y;
}

}  // namespace

TEST_CASE("an op without a CUDA implementation says so, with no silent CPU fallback", "[cpu]") {
  const Device& gpu = cuda_device();
  CHECK(cpu_only_op(Tensor::ones({3})).to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK_THROWS_WITH(cpu_only_op(Tensor::ones({3}, DType::f32, gpu)),
                    Catch::Contains("cpu_only_op") && Catch::Contains("no CUDA implementation yet"));
  Tensor x = Tensor::zeros({1, 4, 4, 3}, DType::f32, gpu);
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({2, 1, 1, 3}), Tensor()), Catch::Contains("devices must match"));
}

TEST_CASE("printing a cuda tensor shows its values", "[cpu]") {
  Tensor t = Tensor::from_vector<float>({1, 2, 3}, {3}, cuda_device());
  CHECK(t.str() == "f32[3] on cuda:0\n[1, 2, 3]");
}

TEST_CASE("the cuda context caches device memory unless STRATA_CUDA_NO_CACHING, and empty_cache returns it", "[cpu]") {
  const Device& gpu = cuda_device();
  empty_cache(gpu);
  MemoryStats before = memory_stats(gpu);
  { Tensor t = Tensor::empty({1 << 20}, DType::f32, gpu); }  // 4 MiB, then freed
  MemoryStats after_free = memory_stats(gpu);
  CHECK(after_free.allocated_bytes == before.allocated_bytes);
  if (cuda_context(gpu).options().caching) {
    CHECK(after_free.reserved_bytes > before.reserved_bytes);  // kept in the cache
    empty_cache(gpu);
  }
  CHECK(memory_stats(gpu).reserved_bytes == before.reserved_bytes);
}

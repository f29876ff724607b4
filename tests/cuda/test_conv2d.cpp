// conv2d and linear on CUDA (cuDNN, cuBLAS) against the CPU reference: outputs and every gradient on
// every case of their table (tests/engine/conv2d_cases.h) and on ResNet-50 / DeepLabV3 layer shapes at
// small spatial sizes; the per-device algorithm cache (hits, benchmark mode, workspace
// limit, deterministic mode, f64 algorithms) and the errors for what cuDNN cannot do.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/cuda/context.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/linear.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_algorithms.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/conv2d_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::ConvConfig;
using test::cuda_device;
namespace kcu = strata::kernels::cuda;

namespace {

// A CUDA device with its own context (own algorithm cache) and the given options.
Device open_device_with(const CudaOptions& options) {
  auto context = std::make_shared<CudaContext>(0, options);
  Device device{Device::Type::cuda, 0, context};
  context->attach(device);
  return device;
}

// conv2d forward and backward in `dtype` on `device` against the CPU, as check_cuda_matches_cpu does
// on the shared test device.
void check_conv_on(const Device& device, const ConvConfig& c, uint64_t seed, DType dtype = DType::f32) {
  INFO(c.name << " in " << dtype_name(dtype) << " on a device with its own context");
  Generator g(seed);
  Tensor x = Tensor::randn({c.N, c.H, c.W, c.C}, g, dtype), w = Tensor::randn({c.K, c.R, c.S, c.C}, g, dtype);
  Tensor dy = Tensor::randn({c.N, conv2d_output_size(c.H, c.R, c.stride, c.pad, c.dilation),
                             conv2d_output_size(c.W, c.S, c.stride, c.pad, c.dilation), c.K},
                            g, dtype);
  Conv2dParams p = Conv2dParams::same(c.stride, c.pad, c.dilation);
  Tensor xc = x.clone().set_requires_grad(true), wc = w.clone().set_requires_grad(true);
  Tensor xg = x.to(device).set_requires_grad(true), wg = w.to(device).set_requires_grad(true);
  Tensor y_cpu = conv2d(xc, wc, Tensor(), p), y_gpu = conv2d(xg, wg, Tensor(), p);
  CHECK_CLOSE(y_gpu.to(Device::cpu()), y_cpu);
  y_cpu.backward(dy);
  y_gpu.backward(dy.to(device));
  CHECK_CLOSE(xg.grad().to(Device::cpu()), xc.grad());
  CHECK_CLOSE(wg.grad().to(Device::cpu()), wc.grad());
}

kcu::Conv2dShape shape_of(const ConvConfig& c) {
  kcu::Conv2dShape s{};
  s.N = c.N;
  s.H = c.H;
  s.W = c.W;
  s.C = c.C;
  s.K = c.K;
  s.R = c.R;
  s.S = c.S;
  s.stride_h = s.stride_w = c.stride;
  s.pad_h = s.pad_w = c.pad;
  s.dilation_h = s.dilation_w = c.dilation;
  s.P = conv2d_output_size(c.H, c.R, c.stride, c.pad, c.dilation);
  s.Q = conv2d_output_size(c.W, c.S, c.stride, c.pad, c.dilation);
  return s;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

}  // namespace

TEST_CASE("cuda conv2d matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::conv2d_cases());
}

TEST_CASE("cuda conv2d matches the CPU on ResNet-50 and DeepLabV3 layer shapes at small sizes", "[cpu]") {
  // Channel counts are scaled down; kernel, stride, padding and dilation are the networks' own, on
  // odd spatial sizes so every border case of the strided layers occurs.
  const ConvConfig configs[] = {
      {"bottleneck 1x1 reduce", 2, 9, 7, 32, 8, 1, 1, 1, 0, 1, false},
      {"bottleneck 1x1 expand, bias", 2, 9, 7, 8, 32, 1, 1, 1, 0, 1, true},
      {"shortcut 1x1 stride 2", 2, 9, 7, 16, 24, 1, 1, 2, 0, 1, false},
      {"shortcut 1x1 stride 2, bias", 1, 8, 6, 16, 24, 1, 1, 2, 0, 1, true},
      {"3x3 pad 1", 2, 9, 7, 16, 16, 3, 3, 1, 1, 1, false},
      {"3x3 pad 1, bias", 1, 8, 11, 16, 8, 3, 3, 1, 1, 1, true},
      {"3x3 stride 2 pad 1", 2, 9, 7, 16, 16, 3, 3, 2, 1, 1, false},
      {"3x3 stride 2 pad 1, even size, bias", 1, 10, 8, 8, 16, 3, 3, 2, 1, 1, true},
      {"layer4 3x3 dilation 2", 2, 9, 7, 16, 8, 3, 3, 1, 2, 2, false},
      {"ASPP 3x3 dilation 6, bias", 1, 13, 11, 16, 8, 3, 3, 1, 6, 6, true},
      {"ASPP 3x3 dilation 12", 1, 13, 11, 16, 8, 3, 3, 1, 12, 12, false},
      {"ASPP 3x3 dilation 12, bias, larger than the image", 2, 9, 7, 8, 8, 3, 3, 1, 12, 12, true},
      {"stem 7x7 stride 2 pad 3", 2, 17, 15, 3, 16, 7, 7, 2, 3, 1, false},
      {"stem 7x7 stride 2 pad 3, bias", 1, 16, 13, 3, 8, 7, 7, 2, 3, 1, true},
      {"classifier 1x1, bias", 2, 9, 7, 16, 21, 1, 1, 1, 0, 1, true},
  };
  test::OpCases cases;
  uint64_t seed = 22;
  for (const ConvConfig& c : configs) cases.push_back(test::conv2d_case(c, seed++));
  check_cuda_matches_cpu(cases);
}

TEST_CASE("cuda conv2d chooses each pass's algorithm once per shape and then hits the cache", "[cpu]") {
  const Device& gpu = cuda_device();
  kcu::ConvAlgorithmCache& cache = cuda_context(gpu).conv_algorithms();
  CHECK_FALSE(cache.policy().benchmark);
  CHECK(cache.policy().workspace_limit == size_t{1} << 30);
  Generator g(23);
  const ConvConfig c{"cache", 1, 11, 9, 6, 5, 3, 3, 1, 1, 1, false};
  Tensor x = Tensor::randn({1, 11, 9, 6}, g).to(gpu).set_requires_grad(true);
  Tensor w = Tensor::randn({5, 3, 3, 6}, g).to(gpu).set_requires_grad(true);
  auto step = [&] {
    Tensor y = conv2d(x, w, Tensor(), Conv2dParams::same(1, 1));
    y.backward(Tensor::ones(y.shape(), DType::f32, gpu));
  };
  const kcu::Conv2dShape s = shape_of(c);
  for (kcu::ConvPass pass : {kcu::ConvPass::forward, kcu::ConvPass::backward_data, kcu::ConvPass::backward_filter}) {
    REQUIRE_FALSE(cache.peek(kcu::conv2d_algorithm_key<float>(s, pass)));
  }
  kcu::ConvAlgorithmCache::Stats before = cache.stats();
  step();
  kcu::ConvAlgorithmCache::Stats first = cache.stats();
  CHECK(first.misses - before.misses == 3);
  CHECK(first.hits == before.hits);
  CHECK(first.entries - before.entries == 3);
  step();
  kcu::ConvAlgorithmCache::Stats second = cache.stats();
  CHECK(second.hits - first.hits == 3);
  CHECK(second.misses == first.misses);
  CHECK(second.entries == first.entries);
  for (kcu::ConvPass pass : {kcu::ConvPass::forward, kcu::ConvPass::backward_data, kcu::ConvPass::backward_filter}) {
    std::optional<kcu::ConvAlgorithm> a = cache.peek(kcu::conv2d_algorithm_key<float>(s, pass));
    REQUIRE(a);
    CHECK_FALSE(a->benchmarked);
    CHECK(a->math == CUDNN_FMA_MATH);
    CHECK(a->workspace_bytes <= cache.policy().workspace_limit);
  }
  // Another shape is another key.
  Tensor x2 = Tensor::randn({1, 12, 9, 6}, g).to(gpu);
  conv2d(x2, w.detach(), Tensor(), Conv2dParams::same(1, 1));
  CHECK(cache.stats().misses - second.misses == 1);
}

TEST_CASE("cuda conv2d in benchmark mode runs cudnnFind and picks a successful algorithm", "[cpu]") {
  CudaOptions options;
  options.cudnn_benchmark = true;
  Device device = open_device_with(options);
  kcu::ConvAlgorithmCache& cache = cuda_context(device).conv_algorithms();
  REQUIRE(cache.policy().benchmark);
  const ConvConfig configs[] = {{"3x3 pad 1", 2, 9, 7, 8, 8, 3, 3, 1, 1, 1, false},
                                {"3x3 stride 2 dilation 2", 1, 13, 11, 8, 8, 3, 3, 2, 2, 2, false}};
  for (const ConvConfig& c : configs) {
    check_conv_on(device, c, 24);
    for (kcu::ConvPass pass : {kcu::ConvPass::forward, kcu::ConvPass::backward_data, kcu::ConvPass::backward_filter}) {
      std::optional<kcu::ConvAlgorithm> a = cache.peek(kcu::conv2d_algorithm_key<float>(shape_of(c), pass));
      REQUIRE(a);
      CHECK(a->benchmarked);
      CHECK(a->math == CUDNN_FMA_MATH);
      CHECK(a->workspace_bytes <= options.cudnn_workspace_limit);
    }
  }
  CHECK(cache.stats().misses == 6);
}

TEST_CASE("cuda conv2d in f64 uses cuDNN's f64 algorithms, cached apart from the f32 choices", "[cpu]") {
  // cuDNN computes double convolutions only with its GEMM-style algorithms (kernels/cuda/conv2d.cpp);
  // the choice is per data type, so one shape in f32 and in f64 has two entries per pass.
  const ConvConfig c{"3x3 stride 2 dilation 2", 1, 13, 11, 8, 8, 3, 3, 2, 2, 2, false};
  const std::pair<kcu::ConvPass, std::vector<int>> f64_algorithms[] = {
      {kcu::ConvPass::forward,
       {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM}},
      {kcu::ConvPass::backward_data, {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1}},
      {kcu::ConvPass::backward_filter,
       {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3}},
  };
  for (bool benchmark : {false, true}) {
    INFO("benchmark " << benchmark);
    CudaOptions options;
    options.cudnn_benchmark = benchmark;
    Device device = open_device_with(options);
    kcu::ConvAlgorithmCache& cache = cuda_context(device).conv_algorithms();
    check_conv_on(device, c, 28, DType::f64);
    CHECK(cache.stats().entries == 3);
    check_conv_on(device, c, 28, DType::f32);
    CHECK(cache.stats().entries == 6);
    for (const auto& [pass, allowed] : f64_algorithms) {
      const kcu::ConvAlgorithmKey key64 = kcu::conv2d_algorithm_key<double>(shape_of(c), pass);
      const kcu::ConvAlgorithmKey key32 = kcu::conv2d_algorithm_key<float>(shape_of(c), pass);
      CHECK(key64 != key32);
      CHECK(key64.dtype == CUDNN_DATA_DOUBLE);
      std::optional<kcu::ConvAlgorithm> a = cache.peek(key64);
      REQUIRE(a);
      INFO("pass " << static_cast<int>(pass) << " chose algorithm " << a->algo);
      CHECK(std::find(allowed.begin(), allowed.end(), a->algo) != allowed.end());
      CHECK(a->benchmarked == benchmark);
      std::optional<kcu::ConvAlgorithm> f = cache.peek(key32);
      REQUIRE(f);
      CHECK(f->math == CUDNN_FMA_MATH);
    }
  }
}

TEST_CASE("cuda conv2d falls back to an algorithm that fits when the preferred one's workspace is over the limit",
          "[cpu]") {
  // The pass whose first choice needs the largest workspace (under the emulator the filter
  // gradient's im2col buffer of C*R*S*P*Q floats, 82 KiB) is given a limit of half that: it must
  // fall back to another algorithm that fits, in both modes, and every pass must respect the limit.
  const ConvConfig c{"3x3 pad 1", 2, 15, 13, 12, 8, 3, 3, 1, 1, 1, false};
  const kcu::ConvPass passes[] = {kcu::ConvPass::forward, kcu::ConvPass::backward_data,
                                  kcu::ConvPass::backward_filter};

  CudaOptions unlimited;
  Device free_device = open_device_with(unlimited);
  check_conv_on(free_device, c, 25);
  kcu::ConvAlgorithmKey key;
  std::optional<kcu::ConvAlgorithm> preferred;
  for (kcu::ConvPass pass : passes) {
    std::optional<kcu::ConvAlgorithm> a =
        cuda_context(free_device).conv_algorithms().peek(kcu::conv2d_algorithm_key<float>(shape_of(c), pass));
    REQUIRE(a);
    if (!preferred || a->workspace_bytes > preferred->workspace_bytes) {
      preferred = a;
      key = kcu::conv2d_algorithm_key<float>(shape_of(c), pass);
    }
  }
  INFO("pass " << static_cast<int>(key.pass) << " prefers algorithm " << preferred->algo << " with "
               << preferred->workspace_bytes << " bytes of workspace");
  REQUIRE(preferred->workspace_bytes > 0);
  const size_t limit = preferred->workspace_bytes / 2;

  for (bool benchmark : {false, true}) {
    INFO("benchmark " << benchmark);
    CudaOptions capped;
    capped.cudnn_workspace_limit = limit;
    capped.cudnn_benchmark = benchmark;
    Device device = open_device_with(capped);
    check_conv_on(device, c, 25);
    kcu::ConvAlgorithmCache& cache = cuda_context(device).conv_algorithms();
    for (kcu::ConvPass pass : passes) {
      std::optional<kcu::ConvAlgorithm> a = cache.peek(kcu::conv2d_algorithm_key<float>(shape_of(c), pass));
      REQUIRE(a);
      CHECK(a->workspace_bytes <= limit);
    }
    std::optional<kcu::ConvAlgorithm> fallback = cache.peek(key);
    REQUIRE(fallback);
    CHECK(fallback->algo != preferred->algo);
  }
}

TEST_CASE("cuda conv2d in deterministic mode skips the algorithms cuDNN reports as non-deterministic", "[cpu]") {
  // The filter gradient's first choice (ALGO_1 under the emulator's heuristics) needs an im2col
  // workspace; with half of it allowed, the fallback is ALGO_0, which sums with atomics. In
  // deterministic mode that fallback is refused too, by name.
  const ConvConfig c{"3x3 pad 1", 2, 15, 13, 12, 8, 3, 3, 1, 1, 1, false};
  const kcu::ConvAlgorithmKey key = kcu::conv2d_algorithm_key<float>(shape_of(c), kcu::ConvPass::backward_filter);
  Device free_device = open_device_with(CudaOptions{});
  check_conv_on(free_device, c, 26);
  std::optional<kcu::ConvAlgorithm> preferred = cuda_context(free_device).conv_algorithms().peek(key);
  REQUIRE(preferred);
  REQUIRE(preferred->deterministic);
  REQUIRE(preferred->workspace_bytes > 0);

  CudaOptions capped;
  capped.cudnn_workspace_limit = preferred->workspace_bytes / 2;
  Device device = open_device_with(capped);
  check_conv_on(device, c, 26);
  std::optional<kcu::ConvAlgorithm> fallback = cuda_context(device).conv_algorithms().peek(key);
  REQUIRE(fallback);
  CHECK_FALSE(fallback->deterministic);

  for (bool benchmark : {false, true}) {
    INFO("benchmark " << benchmark);
    CudaOptions strict = capped;
    strict.cudnn_deterministic = true;
    strict.cudnn_benchmark = benchmark;
    Device deterministic = open_device_with(strict);
    REQUIRE(cuda_context(deterministic).conv_algorithms().policy().deterministic);
    Generator g(27);
    Tensor x = Tensor::randn({2, 15, 13, 12}, g).to(deterministic).set_requires_grad(true);
    Tensor w = Tensor::randn({8, 3, 3, 12}, g).to(deterministic).set_requires_grad(true);
    Tensor y = conv2d(x, w, Tensor(), Conv2dParams::same(1, 1));
    CHECK_THROWS_WITH(y.backward(Tensor::ones(y.shape(), DType::f32, deterministic)),
                      Catch::Contains("backward-filter") && Catch::Contains("deterministically") &&
                          Catch::Contains("algorithm 0: not deterministic"));
    // Without the workspace limit the deterministic first choice is taken as before.
    CudaOptions roomy;
    roomy.cudnn_deterministic = true;
    roomy.cudnn_benchmark = benchmark;
    Device unconstrained = open_device_with(roomy);
    check_conv_on(unconstrained, c, 26);
    for (kcu::ConvPass pass : {kcu::ConvPass::forward, kcu::ConvPass::backward_data, kcu::ConvPass::backward_filter}) {
      std::optional<kcu::ConvAlgorithm> a =
          cuda_context(unconstrained).conv_algorithms().peek(kcu::conv2d_algorithm_key<float>(shape_of(c), pass));
      REQUIRE(a);
      CHECK(a->deterministic);
    }
  }
}

TEST_CASE("cuda conv2d options come from the environment", "[cpu]") {
  {
    ScopedEnv benchmark("STRATA_CUDNN_BENCHMARK", "1");
    ScopedEnv limit("STRATA_CUDNN_WORKSPACE_LIMIT", "256M");
    ScopedEnv deterministic("STRATA_CUDNN_DETERMINISTIC", "1");
    CudaOptions o = CudaOptions::from_environment();
    CHECK(o.cudnn_benchmark);
    CHECK(o.cudnn_deterministic);
    CHECK(o.cudnn_workspace_limit == size_t{256} << 20);
  }
  {
    ScopedEnv benchmark("STRATA_CUDNN_BENCHMARK", "0");
    ScopedEnv limit("STRATA_CUDNN_WORKSPACE_LIMIT", "4096");
    CudaOptions o = CudaOptions::from_environment();
    CHECK_FALSE(o.cudnn_benchmark);
    CHECK_FALSE(o.cudnn_deterministic);
    CHECK(o.cudnn_workspace_limit == 4096);
  }
  for (const char* bad : {"lots", "12MB", "-1", "3T"}) {
    ScopedEnv limit("STRATA_CUDNN_WORKSPACE_LIMIT", bad);
    CHECK_THROWS_WITH(CudaOptions::from_environment(),
                      Catch::Contains("STRATA_CUDNN_WORKSPACE_LIMIT") && Catch::Contains(bad));
  }
}

TEST_CASE("cuda conv2d refuses what cuDNN cannot do with clear errors", "[cpu]") {
  const Device& gpu = cuda_device();
  // CUDA convolutions compute f32 and f64, not 16-bit data (yet).
  Tensor x = Tensor::zeros({1, 5, 5, 3}, DType::f16, gpu), w = Tensor::zeros({2, 3, 3, 3}, DType::f16, gpu);
  CHECK_THROWS_WITH(conv2d(x, w, Tensor()), Catch::Contains("conv2d") && Catch::Contains("f32 or f64"));
  Tensor xf = Tensor::zeros({1, 5, 5, 3}, DType::f32, gpu), wf = Tensor::zeros({2, 3, 3, 3}, DType::f32, gpu);
  CHECK_THROWS_WITH(conv2d(xf, wf, Tensor::zeros({2})), Catch::Contains("devices must match"));

  // A batch whose activation has 2^31 elements cannot be described to cuDNN's legacy API; the
  // wrapper says so before touching any memory.
  ConvConfig huge{"huge", 512, 1024, 1024, 4, 4, 1, 1, 1, 0, 1, false};
  TensorScratch scratch(gpu);
  CHECK_THROWS_WITH(kcu::conv2d_forward<float>(nullptr, nullptr, nullptr, nullptr, shape_of(huge),
                                               cuda_context(gpu).kernel_backend(&scratch)),
                    Catch::Contains("too large for cuDNN") && Catch::Contains("(512,1024,1024,4)"));
}

TEST_CASE("cuda linear matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::linear_cases());
}

TEST_CASE("cuda linear refuses operands of different dtypes", "[cpu]") {
  Generator g(27);
  Tensor x = Tensor::randn({6, 10}, g).to(cuda_device());
  Tensor w = Tensor::randn({4, 10}, g, DType::f64).to(cuda_device());
  CHECK_THROWS_WITH(linear(x, w, Tensor()), Catch::Contains("dtypes must match"));
}

TEST_CASE("conv2d_activation on CUDA matches the CPU: activations, bias, residuals, f32 and f64", "[cuda]") {
  check_cuda_matches_cpu(test::conv2d_activation_cases());
}

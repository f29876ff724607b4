// cross_entropy, nll, bce_with_logits and mse on CUDA against the CPU reference: the cases of
// tests/engine/losses_cases.h, class counts for each kernel path, u8/i32/i64 labels, (N,H,W,C) and
// (N,C) scores, ignored pixels (also all of them: NaN for mean_valid), other ignore indices. The
// loss path never makes the host wait (counted by the emulator); an invalid label is reported at the
// device's next host synchronisation with the CPU's message, or by the op itself under
// STRATA_CUDA_SYNC=1.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>

#include "engine/cuda/context.h"
#include "engine/device_context.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/labels.h"
#include "engine/ops/losses.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/labels_cases.h"
#include "tests/engine/losses_cases.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using test::check_cuda_matches_cpu;
using test::kAllReductions;
using test::random_leaf;

namespace {

// Labels in [0, C), a fraction of them set to ignore_index.
Tensor random_labels(const Shape& shape, int64_t channels, DType dtype, int64_t ignore_index, double ignored,
                     Generator& g) {
  std::vector<double> u = Tensor::uniform(shape, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<double> v = Tensor::uniform(shape, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<int64_t> labels(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    labels[i] = v[i] < ignored ? ignore_index : std::min<int64_t>(channels - 1, static_cast<int64_t>(u[i] * channels));
  }
  return Tensor::from_vector(labels, shape).to(dtype);
}

}  // namespace

TEST_CASE("cuda losses match the CPU on every case of their tables", "[cpu]") {
  check_cuda_matches_cpu(test::labelled_loss_cases());
  check_cuda_matches_cpu(test::elementwise_loss_cases());
}

TEST_CASE("cuda cross_entropy and nll match the CPU: reductions, label dtypes, NHWC and (N,C)", "[cpu]") {
  Generator g(91);
  struct Case {
    Shape scores;
    int64_t ignore_index;
    DType label_dtype;
  };
  const std::vector<Case> cases = {
      {{2, 7, 5, 13}, 255, DType::u8},    {{2, 7, 5, 13}, 255, DType::i32}, {{2, 7, 5, 13}, 255, DType::i64},
      {{11, 6}, -100, DType::i64},        {{11, 6}, -100, DType::i32},      {{2, 9, 11, 151}, 255, DType::u8},
      {{1, 3, 37, 300}, 0, DType::i32},   {{29, 700}, 255, DType::i64},     {{2, 40, 43, 21}, 255, DType::u8},
  };
  for (const Case& c : cases) {
    const int64_t C = c.scores.back();
    Shape label_shape(c.scores.begin(), c.scores.end() - 1);
    Tensor x = random_leaf(c.scores, g);
    Tensor labels = random_labels(label_shape, C, c.label_dtype, c.ignore_index, 0.2, g);
    for (Reduction r : kAllReductions) {
      std::string what = shape_str(c.scores) + " " + dtype_name(c.label_dtype) + " labels, ignore_index " +
                         std::to_string(c.ignore_index) + ", reduction " + to_string(r);
      int64_t ignore = c.ignore_index;
      check_cuda_matches_cpu("cross_entropy " + what,
                             [r, ignore](const auto& in) { return cross_entropy(in[0], in[1], r, ignore); },
                             {x, labels});
      check_cuda_matches_cpu("nll of log_softmax " + what,
                             [r, ignore](const auto& in) { return nll(log_softmax(in[0]), in[1], r, ignore); },
                             {x, labels});
      check_cuda_matches_cpu("nll " + what, [r, ignore](const auto& in) { return nll(in[0], in[1], r, ignore); },
                             {x, labels});
    }
  }
}

TEST_CASE("cuda cross_entropy and nll with every pixel ignored: NaN for mean_valid, zero gradients", "[cpu]") {
  Generator g(92);
  Tensor x = random_leaf({2, 3, 4, 5}, g);
  Tensor labels = Tensor::full({2, 3, 4}, 255, DType::u8);
  for (Reduction r : kAllReductions) {
    INFO(to_string(r));
    check_cuda_matches_cpu("cross_entropy", [r](const auto& in) { return cross_entropy(in[0], in[1], r); },
                           {x, labels});
    check_cuda_matches_cpu("nll", [r](const auto& in) { return nll(in[0], in[1], r); }, {x, labels});
  }
  Tensor y = cross_entropy(x.detach().to(test::cuda_device()), labels.to(test::cuda_device()), Reduction::mean_valid);
  CHECK(std::isnan(y.item()));
}

TEST_CASE("cuda cross_entropy and nll report an invalid label at the next host synchronisation", "[cpu]") {
  const Device& gpu = test::cuda_device();
  DeviceContext& device = *gpu.context;
  Generator g(93);
  Tensor x = Tensor::randn({2, 3, 4, 5}, g).to(gpu);
  // The CPU's message, and where it was found.
  auto label_7 = [](const char* op, const Tensor& labels) {
    return std::string(op) + ": label 7 at (n=1, h=1, w=3) of labels " + labels.describe() +
           " is outside [0, 5) and is not ignore_index 255";
  };
  const auto deferred = Catch::Contains("at the first host synchronisation after the op ran");
  for (DType dtype : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor labels = test::labels_with_invalid(dtype).to(gpu);
    // The op returns without waiting for the device; the verdict comes with the next read.
    Tensor loss = cross_entropy(x, labels, Reduction::mean_valid);
    CHECK_THROWS_WITH(loss.item(), Catch::Contains(label_7("cross_entropy", labels)) && deferred);
    // Given once: the failed check is gone.
    CHECK_NOTHROW(loss.item());
    Tensor per_pixel = nll(x, labels, Reduction::none);
    CHECK_THROWS_WITH(per_pixel.to_vector<float>(), Catch::Contains(label_7("nll", labels)) && deferred);
    nll(x, labels, Reduction::sum);
    CHECK_THROWS_WITH(device.synchronize(), Catch::Contains(label_7("nll", labels)) && deferred);
    CHECK_NOTHROW(device.synchronize());
  }
  // Checks are evaluated in the order of the ops: the first bad one is reported, later ones dropped.
  Tensor negative = Tensor::from_vector<int32_t>({0, 1, -1}, {3}).to(gpu);
  Tensor scores = Tensor::randn({3, 4}, g).to(gpu);
  Tensor good = cross_entropy(scores, Tensor::from_vector<int32_t>({0, 1, 2}, {3}).to(gpu), Reduction::sum);
  cross_entropy(scores, negative, Reduction::sum);
  nll(x, test::labels_with_invalid(DType::u8).to(gpu), Reduction::sum);
  CHECK_THROWS_WITH(good.item(), Catch::Contains("cross_entropy: label -1 at (n=2)"));
  CHECK_NOTHROW(device.synchronize());
  // Shapes, dtypes and devices are still checked at the call.
  CHECK_THROWS_WITH(cross_entropy(x, Tensor::zeros({2, 3, 4}, DType::u8), Reduction::sum),
                    Catch::Contains("devices must match"));
}

TEST_CASE("cuda cross_entropy under STRATA_CUDA_SYNC=1 reports an invalid label from the op itself", "[cpu]") {
  // A second context on the device with the debug switch the environment variable sets.
  CudaOptions options;
  options.sync_after_launch = true;
  auto context = std::make_shared<CudaContext>(0, options);
  Device synced{Device::Type::cuda, 0, context};
  context->attach(synced);
  Generator g(95);
  Tensor x = Tensor::randn({2, 3, 4, 5}, g).to(synced);
  Tensor labels = test::labels_with_invalid(DType::u8).to(synced);
  CHECK_THROWS_WITH(cross_entropy(x, labels, Reduction::mean_all),
                    Catch::Contains("cross_entropy: label 7 at (n=1, h=1, w=3)") &&
                        Catch::Contains("detected right after the op, STRATA_CUDA_SYNC=1"));
  CHECK_NOTHROW(cross_entropy(x, Tensor::zeros({2, 3, 4}, DType::u8).to(synced), Reduction::mean_all).item());
}

#if STRATA_CUDA_EMULATION_FOR_TESTS
TEST_CASE("cuda losses, map_labels and reductions never make the host wait, forward and backward", "[cpu]") {
  const Device& gpu = test::cuda_device();
  Generator g(96);
  Tensor x = random_leaf({2, 9, 11, 21}, g).detach().to(gpu);
  x.set_requires_grad(true);
  Tensor targets = Tensor::uniform({2, 9, 11, 21}, 0.0, 1.0, g).to(gpu);
  Tensor labels = random_labels({2, 9, 11}, 21, DType::u8, 255, 0.2, g).to(gpu);
  const std::vector<int64_t> host_table = test::unbiased_table(16, 21);
  Tensor table = Tensor::from_vector(host_table, {21}).to(gpu);
  auto step = [&] {
    for (Reduction r : kAllReductions) {
      Tensor ce = cross_entropy(x, labels, r);
      Tensor lp = nll(log_softmax(x), map_labels(labels, table), r);
      Tensor total = r == Reduction::none ? add(sum(ce), mean(lp)) : add(ce, lp);
      total.backward();
    }
    // A table from the host travels through the pinned staging buffers: no wait either.
    cross_entropy(x, map_labels(labels, host_table), Reduction::mean_valid).backward();
    add(bce_with_logits(x, targets, Reduction::mean_all), mse(x, targets, Reduction::sum)).backward();
    mean_spatial(x).backward(Tensor::ones({2, 1, 1, 21}).to(gpu));
  };
  step();  // warm-up: the caching allocator and the staging buffers hold what the step needs
  gpu.context->synchronize();
  const uint64_t before = cudaemu::host_synchronization_count();
  step();
  CHECK(cudaemu::host_synchronization_count() == before);
  // The step's label checks are evaluated where the host waits anyway: synchronize() waits for the
  // copy stream and the compute stream, and nothing more.
  gpu.context->synchronize();
  CHECK(cudaemu::host_synchronization_count() - before == 2);
  CHECK(x.grad().defined());
}
#endif

TEST_CASE("cuda bce_with_logits and mse match the CPU with gradients for both inputs", "[cpu]") {
  Generator g(94);
  for (const Shape& shape : std::vector<Shape>{{2, 7, 5, 13}, {1, 1, 1, 100003}, {4}}) {
    Tensor logits = random_leaf(shape, g);
    Tensor targets = Tensor::uniform(shape, 0.0, 1.0, g);
    targets.set_requires_grad(true);
    Tensor b = random_leaf(shape, g);
    for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_all}) {
      std::string what = shape_str(shape) + " reduction " + to_string(r);
      check_cuda_matches_cpu("bce_with_logits " + what,
                             [r](const auto& in) { return bce_with_logits(in[0], in[1], r); }, {logits, targets});
      check_cuda_matches_cpu("mse " + what, [r](const auto& in) { return mse(in[0], in[1], r); }, {logits, b});
    }
  }
  // Large logits of both signs: the stable forms on both backends.
  Tensor extreme = Tensor::from_vector<float>({-120.f, -30.f, 0.f, 30.f, 120.f}, {5});
  extreme.set_requires_grad(true);
  Tensor t = Tensor::from_vector<float>({0.f, 1.f, 0.5f, 0.f, 1.f}, {5});
  check_cuda_matches_cpu("bce_with_logits of large logits",
                         [](const auto& in) { return bce_with_logits(in[0], in[1], Reduction::sum); }, {extreme, t});
}

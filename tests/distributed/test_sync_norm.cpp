// Synchronised batch norm and In-place ABN (engine/ops/batch_norm.h's sync) on two ranks: each rank
// normalises half of a batch, and its output, input gradient, the all-reduced weight and bias gradients
// and the running statistics equal one process normalising the whole batch (f64, kF64), on the CPU and
// on the emulated CUDA device.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/device.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/inplace_abn.h"
#include "engine/ops/reduce.h"
#include "tests/distributed/world.h"
#include "tests/support/compare.h"

using namespace strata;
using strata::testing::world;

namespace {

constexpr int64_t kImages = 4, kHeight = 3, kWidth = 2, kChannels = 5;

// Images [first, first + count) of a fixed (kImages, kHeight, kWidth, kChannels) f64 batch.
Tensor images(uint64_t seed, int64_t first, int64_t count, double offset, const Device& device) {
  Generator generator(seed);
  std::vector<double> all =
      Tensor::randn({kImages, kHeight, kWidth, kChannels}, generator, DType::f64).to_vector<double>();
  const int64_t per_image = kHeight * kWidth * kChannels;
  std::vector<double> part(all.begin() + first * per_image, all.begin() + (first + count) * per_image);
  for (double& v : part) v += offset;
  return Tensor::from_vector(part, {count, kHeight, kWidth, kChannels}).to(device);
}

struct NormRun {
  Tensor y, dx, dweight, dbias, running_mean, running_var;
};

// The norm of `abn` kind on images [first, first + count), loss sum(y * w) with fixed weights w.
NormRun run_norm(bool abn, int64_t first, int64_t count, distributed::Communicator* sync, const Device& device) {
  Tensor x = images(1, first, count, 3.0, device).set_requires_grad(true);
  Tensor w = images(2, first, count, 0.0, device);
  Generator generator(3);
  Tensor weight = Tensor::uniform({kChannels}, 0.5, 1.5, generator, DType::f64).to(device).set_requires_grad(true);
  Tensor bias = Tensor::uniform({kChannels}, -0.5, 0.5, generator, DType::f64).to(device).set_requires_grad(true);
  NormRun run{Tensor(),
              Tensor(),
              Tensor(),
              Tensor(),
              Tensor::zeros({kChannels}, DType::f64).to(device),
              Tensor::ones({kChannels}, DType::f64).to(device)};
  run.y = abn ? inplace_abn(x, weight, bias, run.running_mean, run.running_var, true, 0.1, 1e-5, Activation::leaky_relu,
                            0.01, sync)
              : batch_norm(x, weight, bias, run.running_mean, run.running_var, true, 0.1, 1e-5, sync);
  sum(mul(run.y, w)).backward();
  run.dx = x.grad();
  run.dweight = weight.grad();
  run.dbias = bias.grad();
  return run;
}

void check_synchronised(bool abn, const Device& device, distributed::Communicator& sync) {
  const int64_t half = kImages / 2, first = world().rank() * half;
  NormRun whole = run_norm(abn, 0, kImages, nullptr, device);
  NormRun mine = run_norm(abn, first, half, &sync, device);
  NormRun alone = run_norm(abn, first, half, nullptr, device);
  const int64_t per_image = kHeight * kWidth * kChannels;
  auto rows_of = [&](const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    return Tensor::from_vector(
        std::vector<double>(v.begin() + first * per_image, v.begin() + (first + half) * per_image),
        {half, kHeight, kWidth, kChannels});
  };
  CHECK_CLOSE(mine.y.to(Device::cpu()), rows_of(whole.y), test::kF64);
  CHECK_CLOSE(mine.dx.to(Device::cpu()), rows_of(whole.dx), test::kF64);
  world().all_reduce_sum(mine.dweight);
  world().all_reduce_sum(mine.dbias);
  CHECK_CLOSE(mine.dweight, whole.dweight, test::kF64);
  CHECK_CLOSE(mine.dbias, whole.dbias, test::kF64);
  CHECK_CLOSE(mine.running_mean, whole.running_mean, test::kF64);
  CHECK_CLOSE(mine.running_var, whole.running_var, test::kF64);
  // Not vacuous: the rank's own statistics differ from the whole batch's.
  CHECK_FALSE(test::compare(alone.y.to(Device::cpu()), rows_of(whole.y), test::kF32).ok);
}

}  // namespace

TEST_CASE("synchronised batch norm over two ranks equals one process with the whole batch", "[distributed]") {
  SECTION("batch_norm") { check_synchronised(false, Device::cpu(), world()); }
  SECTION("inplace_abn") { check_synchronised(true, Device::cpu(), world()); }
  if (std::string(cuda_backend()) == "emulated") {
    Device device = open_cuda_device(0);
    SECTION("batch_norm on emulated CUDA") { check_synchronised(false, device, world()); }
    SECTION("inplace_abn on emulated CUDA") { check_synchronised(true, device, world()); }
    // The nccl backend: the statistics' sums reduced on the device.
    std::unique_ptr<distributed::Communicator> nccl = distributed::make_communicator(
        strata::testing::mpi_session(), {.backend = distributed::CommBackend::nccl, .timeout_seconds = 60});
    SECTION("inplace_abn on emulated CUDA over nccl") { check_synchronised(true, device, *nccl); }
  }
}

// DeepInversion (incremental/inversion.h) on CUDA against the CPU: three iterations of the whole
// optimisation (jitter, the objective with every term including the competition against a student,
// its image gradient through both networks, Adam, the clip) give the same images, terms and
// predictions.
#include <catch2/catch.hpp>

#include "incremental/inversion.h"
#include "models/segmentation_model.h"
#include "tests/cuda/cuda_device.h"
#include "tests/support/compare.h"
#include "tests/support/norms.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::incremental;
using test::cuda_device;

namespace {

// A small model with randomised norms (running statistics away from 0 and 1), in float64 on `device`.
std::shared_ptr<models::SegmentationModel> model_on(const Device& device, std::vector<int64_t> classes, uint64_t seed) {
  models::ModelConfig config = models::small_model_config(std::move(classes), 16);
  config.width = 8;
  config.head_channels = 16;
  config.seed = seed;
  auto model = std::make_shared<models::SegmentationModel>(config);
  Generator g(seed + 100);
  test::randomize_norms(*model, g);
  model->to(DType::f64);
  model->to(device);
  return model;
}

}  // namespace

TEST_CASE("DeepInversion on CUDA matches the CPU: three iterations of the whole optimisation", "[cuda]") {
  InversionOptions o;
  o.size = 24;
  o.iterations = 3;
  o.warmup_iterations = 1;
  o.jitter = 5;
  o.tv_l1 = 0.1;
  o.adi_scale = 0.5;
  std::vector<uint8_t> targets;
  for (int64_t image = 0; image < 2; ++image) {
    const std::vector<uint8_t> map =
        inversion_target(InversionLayout::random, 1 + static_cast<int>(image), 3, 24, 5, image);
    targets.insert(targets.end(), map.begin(), map.end());
  }
  InversionBatch on[2];
  for (int d = 0; d < 2; ++d) {
    const Device device = d == 0 ? Device::cpu() : cuda_device();
    auto teacher = model_on(device, {3}, 7);
    auto student = model_on(device, {3, 2}, 8);
    DeepInversion inversion(*teacher, student.get(), o);
    on[d] = inversion.synthesize(targets, 0);
  }
  CHECK(on[1].images.device().is_cuda());
  CHECK_CLOSE(on[1].images.to(Device::cpu()), on[0].images, test::kF64);
  CHECK(on[1].predictions == on[0].predictions);
  for (auto [cuda, cpu] : {std::pair{on[1].first, on[0].first}, std::pair{on[1].last, on[0].last}}) {
    CHECK(cuda.total == Approx(cpu.total).epsilon(1e-10));
    CHECK(cuda.feature == Approx(cpu.feature).epsilon(1e-10));
    CHECK(cuda.competition == Approx(cpu.competition).epsilon(1e-10));
    CHECK(cuda.tv_l1 == Approx(cpu.tv_l1).epsilon(1e-10));
  }
}

// The folded model (models::FoldedSegmentationModel, what the teacher runs) on the CUDA device against
// the CPU: folded on the device from a model moved there, every map of the forward equals the CPU's
// folded forward and the CPU's unfolded eval forward, for MiB's head with In-place ABN and
// torchvision's with batch norm and the aux head, in f32 and f64.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "engine/autograd.h"
#include "models/segmentation_model.h"
#include "tests/cuda/cuda_device.h"
#include "tests/support/compare.h"
#include "tests/support/norms.h"

using namespace strata;
using test::cuda_device;

namespace {

void check_same(const char* what, const Tensor& cuda, const Tensor& cpu) {
  INFO(what);
  REQUIRE(cuda.defined() == cpu.defined());
  if (!cpu.defined()) return;
  CHECK(cuda.device() == cuda_device());
  CHECK_CLOSE(cuda.to(Device::cpu()), cpu);
}

void check_maps(const models::ForwardResult& cuda, const models::ForwardResult& cpu) {
  check_same("logits", cuda.logits, cpu.logits);
  check_same("low_res_logits", cuda.low_res_logits, cpu.low_res_logits);
  check_same("body", cuda.body, cpu.body);
  check_same("head", cuda.head, cpu.head);
  REQUIRE(cuda.aux_logits.size() == cpu.aux_logits.size());
  for (size_t i = 0; i < cpu.aux_logits.size(); ++i) check_same("aux_logits", cuda.aux_logits[i], cpu.aux_logits[i]);
  for (size_t i = 0; i < 4; ++i)
    check_same("stage_pre_activations", cuda.stage_pre_activations[i], cpu.stage_pre_activations[i]);
}

}  // namespace

TEST_CASE("the folded model on CUDA matches the CPU's folded and unfolded forwards", "[cuda]") {
  models::ModelConfig mib = models::small_model_config({4, 2}, 16);
  models::ModelConfig tv = models::small_model_config({5}, 16);
  tv.flavour = models::Flavour::torchvision;
  tv.aux = true;
  for (const models::ModelConfig& config : {mib, tv}) {
    for (DType dtype : {DType::f32, DType::f64}) {
      INFO(config.describe() << ", " << dtype_name(dtype));
      models::SegmentationModel model(config);
      Generator g(21);
      test::randomize_norms(model, g);
      model.to(dtype);
      model.eval();
      const Tensor images = Tensor::randn({2, 35, 29, 3}, g, dtype);
      models::ForwardOptions all;
      all.low_res_logits = all.body = all.head = all.stage_pre_activations = true;
      all.aux_logits = config.aux;

      models::ForwardResult unfolded;
      {
        autograd::NoGradGuard no_grad;
        unfolded = model.forward(images, all);
      }
      const models::ForwardResult folded_cpu = models::FoldedSegmentationModel(model).forward(images, all);
      model.to(cuda_device());
      const models::FoldedSegmentationModel folded(model);
      const models::ForwardResult on_cuda = folded.forward(images.to(cuda_device()), all);
      {
        INFO("against the CPU's folded forward");
        check_maps(on_cuda, folded_cpu);
      }
      {
        INFO("against the CPU's unfolded forward");
        check_maps(on_cuda, unfolded);
      }
    }
  }
}

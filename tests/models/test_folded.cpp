// FoldedSegmentationModel (models/segmentation_model.h, folding in models/blocks.h): the folded eval
// forward equals the model's own eval forward for every map ForwardOptions can ask for, in both
// flavours (torchvision with batch norm and the aux head; MiB with In-place ABN, global and sliding
// image pooling) and both dtypes; folding a norm in training mode is an error naming it; the folded
// forward records no graph and holds fewer bytes at its peak than the unfolded one.
//
// Tolerances: float64 compares with kF64. Float32 compares each folded map with the unfolded float32
// map within kF32: the small model (16 convolutions deep) on tiny images stays within it, the folded
// weights round once more than the unfolded ones (w * scale in double, then to float).
#include <catch2/catch.hpp>
#include <string>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "models/segmentation_model.h"
#include "tests/support/compare.h"
#include "tests/support/norms.h"

using namespace strata;

namespace {

struct Case {
  std::string name;
  models::ModelConfig config;
};

// The small backbone of both flavours; MiB's once with global image pooling and once with a window
// smaller than the feature map (the sliding average, an (N,h,w,C) image branch), and once with basic
// blocks (ResNet-18's kind).
std::vector<Case> cases() {
  models::ModelConfig mib = models::small_model_config({5, 2}, 16);
  models::ModelConfig sliding = mib;
  sliding.pooling_size = 2;
  models::ModelConfig tv = models::small_model_config({6}, 8);
  tv.flavour = models::Flavour::torchvision;
  tv.aux = true;
  models::ModelConfig basic = mib;
  basic.depth = 18;
  models::ModelConfig psp = models::small_model_config({4, 3}, 8);
  psp.arch = models::Architecture::pspnet;
  models::ModelConfig plus = models::small_model_config({5, 2}, 16);
  plus.arch = models::Architecture::deeplabv3plus;
  models::ModelConfig bise = models::small_model_config({5, 2}, 32);
  bise.arch = models::Architecture::bisenet;
  return {{"mib, In-place ABN", mib},
          {"mib, sliding image pooling", sliding},
          {"torchvision, batch norm + aux", tv},
          {"mib, basic blocks", basic},
          {"pspnet, deep stem + pyramid + aux", psp},
          {"deeplabv3plus, decoder on stage 1", plus},
          {"bisenet, two paths + two aux heads", bise}};
}

models::ForwardOptions every_map(const models::ModelConfig& config) {
  models::ForwardOptions all;
  all.low_res_logits = all.body = all.head = all.stage_pre_activations = true;
  all.aux_logits = config.has_aux();
  return all;
}

// The model of `config` with randomised norms, in eval mode, in `dtype`.
std::shared_ptr<models::SegmentationModel> eval_model(const models::ModelConfig& config, DType dtype) {
  auto model = std::make_shared<models::SegmentationModel>(config);
  Generator g(config.seed + 5);
  test::randomize_norms(*model, g);
  model->to(dtype);
  model->eval();
  return model;
}

void check_same_maps(const models::ForwardResult& folded, const models::ForwardResult& unfolded) {
  auto same = [](const char* what, const Tensor& a, const Tensor& b) {
    INFO(what);
    REQUIRE(a.defined() == b.defined());
    if (!b.defined()) return;
    REQUIRE(a.shape() == b.shape());
    CHECK_CLOSE(a, b);
  };
  same("logits", folded.logits, unfolded.logits);
  same("low_res_logits", folded.low_res_logits, unfolded.low_res_logits);
  same("body", folded.body, unfolded.body);
  same("head", folded.head, unfolded.head);
  REQUIRE(folded.aux_logits.size() == unfolded.aux_logits.size());
  for (size_t i = 0; i < unfolded.aux_logits.size(); ++i)
    same("aux_logits", folded.aux_logits[i], unfolded.aux_logits[i]);
  for (size_t i = 0; i < 4; ++i)
    same("stage_pre_activations", folded.stage_pre_activations[i], unfolded.stage_pre_activations[i]);
}

int64_t allocated() { return memory_stats(Device::cpu()).allocated_bytes; }
int64_t peak() { return memory_stats(Device::cpu()).peak_allocated_bytes; }

}  // namespace

TEST_CASE("a folded model computes the unfolded eval forward, every map, f32 and f64", "[cpu]") {
  for (const Case& c : cases()) {
    for (DType dtype : {DType::f64, DType::f32}) {
      INFO(c.name << ", " << dtype_name(dtype));
      auto model = eval_model(c.config, dtype);
      const models::FoldedSegmentationModel folded(*model);
      CHECK(folded.total_classes() == model->classifier().total_classes());
      Generator g(3);
      const Tensor images = Tensor::randn({2, 45, 37, 3}, g, dtype);
      const models::ForwardOptions all = every_map(c.config);
      autograd::NoGradGuard no_grad;
      check_same_maps(folded.forward(images, all), model->forward(images, all));
      // Without upsampling: the low-resolution logits only.
      models::ForwardOptions low;
      low.upsample = false;
      const models::ForwardResult small = folded.forward(images, low);
      CHECK_FALSE(small.logits.defined());
      CHECK_CLOSE(small.low_res_logits, model->forward(images, low).low_res_logits);
    }
  }
}

TEST_CASE("folding a norm in training mode is an error naming it", "[cpu]") {
  models::SegmentationModel mib(models::small_model_config({3}, 16));
  mib.train();
  CHECK_THROWS_WITH(models::FoldedSegmentationModel(mib),
                    Catch::Contains("body.mod1.bn1 (inplace_abn) is in training mode"));
  // One norm left in training mode deep inside the model is found too.
  mib.eval();
  mib.backbone().stage(4).front()->train();
  CHECK_THROWS_WITH(models::FoldedSegmentationModel(mib), Catch::Contains("body.mod5.block1.convs.bn1"));
  mib.eval();
  CHECK_NOTHROW(models::FoldedSegmentationModel(mib));

  models::ModelConfig tv_config = models::small_model_config({3}, 16);
  tv_config.flavour = models::Flavour::torchvision;
  models::SegmentationModel tv(tv_config);
  tv.eval();
  tv.head().train();
  CHECK_THROWS_WITH(models::FoldedSegmentationModel(tv), Catch::Contains("classifier.0.convs.0.1 (batch_norm)"));
}

// The peak is measured on a backbone of the reference width (64) at output stride 32: the CPU's
// largest single allocation is otherwise an im2col buffer (the stem's, or a dilated ASPP branch's over
// 2048 channels at output stride 16), the same in both forwards, and it hides the activations. Here the
// first stage's projection block sets the unfolded peak (its conv3, bn3, projection, projection norm and
// sum outputs live at once), where the folded block holds its conv3 output and the shortcut.
TEST_CASE("the folded forward records no graph and peaks below the unfolded one", "[cpu]") {
  for (Case c : {cases()[0], cases()[2]}) {
    INFO(c.name);
    c.config.width = 64;
    c.config.output_stride = 32;
    auto model = eval_model(c.config, DType::f32);
    const models::FoldedSegmentationModel folded(*model);
    Generator g(4);
    const Tensor images = Tensor::randn({2, 96, 96, 3}, g);
    const models::ForwardOptions options;  // the logits, as a KD teacher

    // Grad mode on and the model's parameters requiring gradients: the folded forward still records
    // nothing (its weights are its own), and only the returned logits outlive it.
    const int64_t before = allocated();
    reset_peak_memory();
    models::ForwardResult out = folded.forward(images, options);
    const int64_t folded_peak = peak() - before;
    CHECK(out.logits.grad_fn() == nullptr);
    CHECK_FALSE(out.logits.requires_grad());
    CHECK(allocated() - before == static_cast<int64_t>(out.logits.nbytes()));
    out = models::ForwardResult();
    CHECK(allocated() == before);

    int64_t unfolded_peak = 0;
    {
      autograd::NoGradGuard no_grad;
      reset_peak_memory();
      models::ForwardResult reference = model->forward(images, options);
      unfolded_peak = peak() - before;
    }
    CHECK(allocated() == before);
    INFO("peak bytes above the weights and input: folded " << folded_peak << ", unfolded " << unfolded_peak);
    CHECK(folded_peak < unfolded_peak);
  }
}

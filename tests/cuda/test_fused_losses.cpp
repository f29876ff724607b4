// The fused segmentation losses (engine/ops/fused_losses.h) on CUDA against the CPU reference:
// every term in one of two calls with mixed weights and reductions, C in {2, 21, 151}, odd low-resolution
// sizes upsampled to odd crops, ignored pixels, both align_corners, u8/i32/i64 labels, f32 and f64
// (check_cuda_matches_cpu runs both); the fused loss and its gradient never make the host wait; an
// invalid label is reported at the next host synchronisation.
#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "engine/device_context.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/reduce.h"
#include "tests/cuda/cuda_compare.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

// Labels (N,H,W) of `dtype` in [0, classes), about one in five set to 255.
Tensor fused_case_labels(int64_t n, int64_t h, int64_t w, int64_t classes, DType dtype, Generator& g) {
  const std::vector<double> u = Tensor::uniform({n * h * w}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<int64_t> labels(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    labels[i] = u[i] < 0.2 ? 255 : std::min<int64_t>(classes - 1, static_cast<int64_t>((u[i] - 0.2) / 0.8 * classes));
  }
  return Tensor::from_vector(labels, {n, h, w}).to(dtype);
}

// LwF-MC's terms (its three variants' kinds) with cross-entropy, in one call.
std::vector<FusedLossTerm> icarl_terms() {
  return {{PixelLoss::icarl_disjoint, 0.5, Reduction::mean_all},
          {PixelLoss::icarl_disjoint_bkg, 1.5, Reduction::sum},
          {PixelLoss::icarl_bce, 1.0, Reduction::mean_valid},
          {PixelLoss::icarl_distillation, 2.0, Reduction::mean_all},
          {PixelLoss::cross_entropy, 0.25, Reduction::mean_all}};
}

// Every term but LwF-MC's disjoint ones (icarl_terms), weights 0.75, 1, 1.25, ... and each a
// reduction it accepts.
std::vector<FusedLossTerm> all_terms() {
  const PixelLoss kinds[] = {PixelLoss::cross_entropy,
                             PixelLoss::unbiased_cross_entropy,
                             PixelLoss::knowledge_distillation,
                             PixelLoss::unbiased_knowledge_distillation,
                             PixelLoss::icarl_bce,
                             PixelLoss::icarl_distillation};
  const Reduction reductions[] = {Reduction::mean_valid, Reduction::mean_all, Reduction::sum,
                                  Reduction::mean_all,   Reduction::sum,      Reduction::mean_all};
  std::vector<FusedLossTerm> terms;
  for (size_t k = 0; k < 6; ++k) terms.push_back({kinds[k], 0.75 + 0.25 * static_cast<double>(k), reductions[k]});
  return terms;
}

}  // namespace

TEST_CASE("cuda fused losses match the CPU, values and gradients", "[cpu]") {
  struct Case {
    int64_t old_channels, new_channels, batch, low_h, low_w, height, width;
  };
  const Case cases[] = {{1, 1, 3, 7, 9, 61, 67}, {16, 5, 3, 7, 9, 61, 67}, {101, 50, 2, 5, 4, 23, 19}};
  const DType label_types[] = {DType::u8, DType::i32, DType::i64};
  Generator g(31);
  size_t index = 0;
  for (const Case& c : cases) {
    const int64_t classes = c.old_channels + c.new_channels;
    for (bool align_corners : {false, true}) {
      const Tensor logits = random_leaf({c.batch, c.low_h, c.low_w, classes}, g);
      const Tensor teacher = Tensor::randn({c.batch, c.low_h, c.low_w, c.old_channels}, g);
      const Tensor labels = fused_case_labels(c.batch, c.height, c.width, classes, label_types[index++ % 3], g);
      FusedLossOptions options;
      options.old_channels = c.old_channels;
      options.alpha = 0.8;
      options.align_corners = align_corners;
      check_cuda_matches_cpu(
          cat("C_old ", c.old_channels, ", N_new ", c.new_channels, ", align_corners ", align_corners),
          [&](const std::vector<Tensor>& in) { return fused_losses(in[0], in[1], in[2], all_terms(), options); },
          {logits, teacher, labels});
      check_cuda_matches_cpu(
          cat("LwF-MC's terms, C_old ", c.old_channels, ", N_new ", c.new_channels, ", align_corners ", align_corners),
          [&](const std::vector<Tensor>& in) { return fused_losses(in[0], in[1], in[2], icarl_terms(), options); },
          {logits, teacher, labels});
      // L2 KD (--kd-loss l2) keeps its statistic where the unbiased KD does, so it has calls of its own.
      const std::vector<FusedLossTerm> l2_terms = {{PixelLoss::knowledge_distillation_l2, 20.0, Reduction::mean_all},
                                                   {PixelLoss::cross_entropy, 1.0, Reduction::mean_all}};
      check_cuda_matches_cpu(
          cat("L2 KD, C_old ", c.old_channels, ", N_new ", c.new_channels, ", align_corners ", align_corners),
          [&](const std::vector<Tensor>& in) { return fused_losses(in[0], in[1], in[2], l2_terms, options); },
          {logits, teacher, labels});
    }
  }
}

TEST_CASE("cuda fused losses report an invalid label at the next host synchronisation", "[cpu]") {
  const Device& gpu = test::cuda_device();
  Generator g(32);
  const Tensor logits = Tensor::randn({2, 3, 4, 5}, g).to(gpu);
  std::vector<uint8_t> bad(2 * 7 * 9, 1);
  bad[70] = 9;  // (n=1, h=0, w=7)
  FusedLossOptions options;
  const Tensor values = fused_losses(logits, Tensor(), Tensor::from_vector(bad, {2, 7, 9}).to(gpu),
                                     {{PixelLoss::cross_entropy, 1.0, Reduction::mean_all}}, options);
  CHECK_THROWS_WITH(values.item(), Catch::Contains("fused_losses: label 9 at (n=1, h=0, w=7)"));
}

#if STRATA_CUDA_EMULATION_FOR_TESTS
TEST_CASE("cuda fused losses never make the host wait, forward and backward", "[cpu]") {
  const Device& gpu = test::cuda_device();
  Generator g(33);
  Tensor logits = random_leaf({2, 5, 6, 21}, g).detach().to(gpu);
  logits.set_requires_grad(true);
  const Tensor teacher = Tensor::randn({2, 5, 6, 16}, g).to(gpu);
  const Tensor labels = fused_case_labels(2, 37, 41, 21, DType::u8, g).to(gpu);
  FusedLossOptions options;
  options.old_channels = 16;
  auto step = [&] {
    sum(fused_losses(logits, teacher, labels, all_terms(), options)).backward();
    sum(fused_losses(logits, teacher, labels, icarl_terms(), options)).backward();
  };
  step();  // warm-up: the caching allocator holds what the step needs
  gpu.context->synchronize();
  const uint64_t before = cudaemu::host_synchronization_count();
  step();
  CHECK(cudaemu::host_synchronization_count() == before);
  CHECK(logits.grad().defined());
}
#endif

// PLOP's entropy pseudo-labelling (engine/ops/pseudo_labels.h) and the image-weighted fused losses
// on CUDA against the CPU reference: the histogram (accumulated over two calls) and the
// pseudo-labels exactly, γ and the weighted losses with their gradients within tolerance, both
// variants, u8/i32/i64 labels, f32 and f64, odd upsampling factors and an unscaled teacher; and
// none of them makes the host wait.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/device_context.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/pseudo_labels.h"
#include "engine/ops/reduce.h"
#include "tests/cuda/cuda_compare.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

// Labels (N,H,W) of `dtype`: half background (0), the rest over [1, classes) and some 255.
Tensor step_labels(int64_t n, int64_t h, int64_t w, int64_t classes, DType dtype, Generator& g) {
  const std::vector<double> u = Tensor::uniform({n * h * w}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<int64_t> labels(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    labels[i] = u[i] < 0.5   ? 0
                : u[i] > 0.9 ? 255
                             : 1 + static_cast<int64_t>((u[i] - 0.5) / 0.4 * static_cast<double>(classes - 1));
  }
  return Tensor::from_vector(labels, {n, h, w}).to(dtype);
}

struct Case {
  int64_t old_channels, total_channels, batch, low_h, low_w, height, width;
  double teacher_scale;
};
constexpr Case kCases[] = {{4, 6, 2, 5, 7, 17, 19, 3.0}, {16, 21, 3, 7, 9, 33, 31, 4.0}, {3, 5, 2, 9, 9, 9, 9, 2.0}};

}  // namespace

TEST_CASE("cuda entropy pseudo-labels match the CPU: histogram, pseudo-labels and γ", "[cpu]") {
  const Device& gpu = test::cuda_device();
  const DType label_types[] = {DType::u8, DType::i32, DType::i64};
  Generator g(41);
  size_t index = 0;
  for (const Case& c : kCases) {
    for (PseudoMedian median : {PseudoMedian::reference, PseudoMedian::fixed}) {
      for (DType dtype : {DType::f32, DType::f64}) {
        INFO("C_old " << c.old_channels << ", median " << to_string(median) << ", " << dtype_name(dtype));
        const Tensor teacher =
            scale(Tensor::randn({c.batch, c.low_h, c.low_w, c.old_channels}, g, DType::f64), c.teacher_scale).to(dtype);
        const Tensor labels = step_labels(c.batch, c.height, c.width, c.total_channels, label_types[index++ % 3], g);
        PseudoLabelOptions options;
        options.total_channels = c.total_channels;
        options.median = median;
        Tensor cpu_histogram = Tensor::zeros({c.old_channels, kEntropyBins}, DType::i64);
        Tensor gpu_histogram = cpu_histogram.to(gpu);
        for (int call = 0; call < 2; ++call) {
          accumulate_entropy_histogram(cpu_histogram, teacher, labels, options);
          accumulate_entropy_histogram(gpu_histogram, teacher.to(gpu), labels.to(gpu), options);
        }
        CHECK(gpu_histogram.to(Device::cpu()).to_vector<int64_t>() == cpu_histogram.to_vector<int64_t>());
        // Thresholds around the entropies' range, so pixels fall on both sides.
        const double top = median == PseudoMedian::reference ? 0.5 / c.old_channels : 0.8;
        std::vector<double> tau(static_cast<size_t>(c.old_channels));
        for (size_t k = 0; k < tau.size(); ++k)
          tau[k] = top * static_cast<double>(k + 1) / static_cast<double>(tau.size());
        tau.back() = NAN;  // never pseudo-labelled
        const Tensor thresholds = Tensor::from_vector(tau, {c.old_channels}).to(dtype);
        const PseudoLabels cpu = entropy_pseudo_labels(teacher, labels, thresholds, options);
        const PseudoLabels cuda = entropy_pseudo_labels(teacher.to(gpu), labels.to(gpu), thresholds.to(gpu), options);
        REQUIRE(cuda.labels.device() == gpu);
        CHECK(cuda.labels.dtype() == labels.dtype());
        CHECK(cuda.labels.to(Device::cpu()).to_vector<int64_t>() == cpu.labels.to_vector<int64_t>());
        CHECK_CLOSE(cuda.image_weights.to(Device::cpu()), cpu.image_weights);
        const std::vector<double> gamma = cpu.image_weights.to_vector<double>();
        CHECK(*std::max_element(gamma.begin(), gamma.end()) > 0);
      }
    }
  }
}

TEST_CASE("cuda image-weighted fused losses match the CPU, values and gradients", "[cpu]") {
  Generator g(42);
  for (const Case& c : kCases) {
    for (bool align_corners : {false, true}) {
      const Tensor logits = random_leaf({c.batch, c.low_h, c.low_w, c.total_channels}, g);
      const Tensor teacher = Tensor::randn({c.batch, c.low_h, c.low_w, c.old_channels}, g);
      const Tensor labels = step_labels(c.batch, c.height, c.width, c.total_channels, DType::u8, g);
      const Tensor weights = Tensor::uniform({c.batch}, 0.0, 1.0, g);
      check_cuda_matches_cpu(cat("C_old ", c.old_channels, ", align_corners ", align_corners),
                             [&](const std::vector<Tensor>& in) {
                               FusedLossOptions options;
                               options.old_channels = c.old_channels;
                               options.align_corners = align_corners;
                               options.image_weights = in[3];
                               return fused_losses(in[0], in[1], in[2],
                                                   {{PixelLoss::cross_entropy, 1.0, Reduction::mean_all},
                                                    {PixelLoss::knowledge_distillation, 0.5, Reduction::sum}},
                                                   options);
                             },
                             {logits, teacher, labels, weights});
    }
  }
}

#if STRATA_CUDA_EMULATION_FOR_TESTS
TEST_CASE("cuda entropy pseudo-labels and the weighted loss never make the host wait", "[cpu]") {
  const Device& gpu = test::cuda_device();
  Generator g(43);
  Tensor logits = random_leaf({2, 5, 6, 6}, g).detach().to(gpu);
  logits.set_requires_grad(true);
  const Tensor teacher = Tensor::randn({2, 5, 6, 4}, g).to(gpu);
  const Tensor labels = step_labels(2, 17, 19, 6, DType::u8, g).to(gpu);
  const Tensor thresholds = Tensor::full({4}, 0.05, DType::f32, gpu);
  const Tensor histogram = Tensor::zeros({4, kEntropyBins}, DType::i64, gpu);
  PseudoLabelOptions options;
  options.total_channels = 6;
  auto step = [&] {
    accumulate_entropy_histogram(histogram, teacher, labels, options);
    const PseudoLabels pseudo = entropy_pseudo_labels(teacher, labels, thresholds, options);
    FusedLossOptions fused;
    fused.old_channels = 4;
    fused.image_weights = pseudo.image_weights;
    sum(fused_losses(logits, Tensor(), pseudo.labels, {{PixelLoss::cross_entropy}}, fused)).backward();
  };
  step();  // warm-up: the caching allocator holds what the step needs
  gpu.context->synchronize();
  const uint64_t before = cudaemu::host_synchronization_count();
  step();
  CHECK(cudaemu::host_synchronization_count() == before);
  CHECK(logits.grad().defined());
}
#endif

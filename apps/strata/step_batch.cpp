#include "apps/strata/step_batch.h"

#include <random>

namespace strata::app {

void random_step_batch(int64_t batch, int64_t height, int64_t width, int classes, Tensor& images, Tensor& labels) {
  constexpr uint64_t kSeed = 42;
  constexpr double kIgnoredFraction = 0.05;
  std::mt19937 rng(kSeed);
  images = Tensor::empty({batch, height, width, 3}, DType::u8);
  labels = Tensor::empty({batch, height, width}, DType::u8);
  std::uniform_int_distribution<int> byte(0, 255), label(0, classes - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  uint8_t* x = images.data<uint8_t>();
  for (int64_t i = 0; i < images.numel(); ++i) x[i] = static_cast<uint8_t>(byte(rng));
  uint8_t* y = labels.data<uint8_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) {
    y[i] = static_cast<uint8_t>(unit(rng) < kIgnoredFraction ? 255 : label(rng));
  }
}

}  // namespace strata::app

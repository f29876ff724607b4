// `strata demo`: the main job until the continual trainer exists. A small fully convolutional net
// (conv-BN-ReLU x3 with a strided and a dilated conv, a 1x1 classifier, bilinear upsampling to the
// input) learns to segment generated scenes on the CPU with SGD + Nesterov and the poly schedule,
// printing its loss falling and, at the end, pixel accuracy and per-class IoU on held-out scenes.
//
// Scenes: a textured background with up to four objects of three classes (discs, squares and
// horizontal bars, each with its own colour family and jitter) and a one-pixel ignore (255) band
// around every object, as VOC has. Every scene is a pure function of (seed, index).
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/autograd.h"
#include "engine/nn/layers.h"
#include "engine/nn/normalization.h"
#include "engine/ops/argmax.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/ops/upsample.h"
#include "engine/optim/sgd.h"
#include "kernels/common/philox.h"

namespace strata::app {

namespace {

constexpr int64_t kClasses = 4;  // background, disc, square, bar
const char* const kClassNames[kClasses] = {"background", "disc", "square", "bar"};

struct Scenes {
  Tensor images;  // (N,H,W,3) f32, roughly zero-mean
  Tensor labels;  // (N,H,W) u8, 255 = ignore
};

class SceneGenerator {
 public:
  SceneGenerator(uint64_t seed, int64_t size) : seed_(seed), size_(size) {}

  Scenes batch(int64_t first_index, int64_t count) const {
    Scenes s{Tensor::empty({count, size_, size_, 3}), Tensor::empty({count, size_, size_}, DType::u8)};
    for (int64_t i = 0; i < count; ++i) {
      draw(first_index + i, s.images.data<float>() + i * size_ * size_ * 3, s.labels.data<uint8_t>() + i * size_ * size_);
    }
    return s;
  }

 private:
  double uniform(uint64_t index, uint64_t k) const { return philox::uniform(seed_, index * 64 + k, 1); }

  void draw(int64_t index, float* image, uint8_t* label) const {
    uint64_t idx = static_cast<uint64_t>(index);
    const int64_t n = size_;
    for (int64_t p = 0; p < n * n; ++p) {
      label[p] = 0;
      double noise = philox::uniform(seed_, idx * n * n + static_cast<uint64_t>(p), 2) - 0.5;
      image[3 * p + 0] = static_cast<float>(0.3 * noise - 0.2);
      image[3 * p + 1] = static_cast<float>(0.3 * noise - 0.2);
      image[3 * p + 2] = static_cast<float>(0.3 * noise - 0.2);
    }
    int objects = 1 + static_cast<int>(uniform(idx, 0) * 4);
    for (int o = 0; o < objects; ++o) {
      uint64_t k = 1 + 8 * static_cast<uint64_t>(o);
      int cls = 1 + static_cast<int>(uniform(idx, k) * 3);
      double cy = uniform(idx, k + 1) * static_cast<double>(n), cx = uniform(idx, k + 2) * static_cast<double>(n);
      double radius = (0.12 + 0.15 * uniform(idx, k + 3)) * static_cast<double>(n);
      double jitter = 0.3 * (uniform(idx, k + 4) - 0.5);
      const float colour[3][3] = {{0.9f, 0.1f, 0.1f}, {0.1f, 0.8f, 0.2f}, {0.2f, 0.3f, 0.9f}};
      for (int64_t y = 0; y < n; ++y) {
        for (int64_t x = 0; x < n; ++x) {
          double dy = static_cast<double>(y) - cy, dx = static_cast<double>(x) - cx;
          double d;  // signed distance-like value: < 0 inside, in pixels
          if (cls == 1) d = std::sqrt(dx * dx + dy * dy) - radius;
          else if (cls == 2) d = std::max(std::fabs(dx), std::fabs(dy)) - radius * 0.8;
          else d = std::max(std::fabs(dx) - radius * 1.3, std::fabs(dy) - radius * 0.35);
          int64_t p = y * n + x;
          if (d < -0.5) {
            label[p] = static_cast<uint8_t>(cls);
            for (int c = 0; c < 3; ++c) image[3 * p + c] = colour[cls - 1][c] + static_cast<float>(jitter) - 0.5f;
          } else if (d < 0.5) {
            label[p] = 255;  // boundary band, ignored by the loss and the metrics
          }
        }
      }
    }
  }

  uint64_t seed_;
  int64_t size_;
};

class DemoNet : public nn::Layer {
 public:
  DemoNet(Generator& g, int64_t width)
      : conv1_(register_module("conv1", std::make_shared<nn::Conv2d>(3, width, 3, g, Conv2dParams::same(1, 1), false))),
        bn1_(register_module("bn1", std::make_shared<nn::BatchNorm2d>(width))),
        conv2_(register_module("conv2", std::make_shared<nn::Conv2d>(width, 2 * width, 3, g, Conv2dParams::same(2, 1), false))),
        bn2_(register_module("bn2", std::make_shared<nn::BatchNorm2d>(2 * width))),
        conv3_(register_module("conv3",
                               std::make_shared<nn::Conv2d>(2 * width, 2 * width, 3, g, Conv2dParams::same(1, 2, 2), false))),
        bn3_(register_module("bn3", std::make_shared<nn::BatchNorm2d>(2 * width))),
        classifier_(register_module("classifier", std::make_shared<nn::Conv2d>(2 * width, kClasses, 1, g))) {}

  Tensor forward(const Tensor& x) override {
    Tensor h = relu(bn1_->forward(conv1_->forward(x)));
    h = relu(bn2_->forward(conv2_->forward(h)));
    h = relu(bn3_->forward(conv3_->forward(h)));
    return upsample_bilinear(classifier_->forward(h), x.size(1), x.size(2), false);
  }

 private:
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Conv2d> conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn2_;
  std::shared_ptr<nn::Conv2d> conv3_;
  std::shared_ptr<nn::BatchNorm2d> bn3_;
  std::shared_ptr<nn::Conv2d> classifier_;
};

struct Options {
  int64_t iterations = 300;
  int64_t batch = 8;
  int64_t size = 48;
  int64_t width = 16;
  double lr = 0.05;
  uint64_t seed = 1;
};

Options parse(const Args& args, bool& help) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const char* name) {
      check(i + 1 < args.size(), "demo: option ", name, " needs a value");
      return args[++i];
    };
    if (args[i] == "--help" || args[i] == "-h") help = true;
    else if (args[i] == "--iterations") o.iterations = std::stoll(value("--iterations"));
    else if (args[i] == "--batch") o.batch = std::stoll(value("--batch"));
    else if (args[i] == "--size") o.size = std::stoll(value("--size"));
    else if (args[i] == "--width") o.width = std::stoll(value("--width"));
    else if (args[i] == "--lr") o.lr = std::stod(value("--lr"));
    else if (args[i] == "--seed") o.seed = std::stoull(value("--seed"));
    else throw Error(cat("demo: unknown option '", args[i], "' (see --help)"));
  }
  check(o.iterations > 0 && o.batch > 1 && o.size >= 16 && o.width > 0 && o.lr > 0,
        "demo: need iterations > 0, batch > 1, size >= 16, width > 0, lr > 0");
  return o;
}

}  // namespace

int run_demo(const Args& args) {
  bool help = false;
  Options o = parse(args, help);
  if (help) {
    std::printf(
        "usage: strata demo [--iterations 300] [--batch 8] [--size 48] [--width 16] [--lr 0.05] [--seed 1]\n\n"
        "Trains a small conv-BN-ReLU segmentation net on generated scenes (background, discs, squares,\n"
        "bars; a 255 ignore band around objects) on the CPU and prints the loss falling, then pixel\n"
        "accuracy and per-class IoU on 64 held-out scenes. (The class-incremental demo replaces this\n"
        "once the continual trainer exists.)\n");
    return 0;
  }
  Generator init(o.seed);
  DemoNet net(init, o.width);
  optim::SGD sgd({{"all", net.named_parameters(), o.lr, 0.9, 1e-4, true}});
  optim::PolyLR schedule(sgd, o.iterations);
  SceneGenerator scenes(o.seed + 1000, o.size);
  std::printf("strata demo: %lld parameters, %d threads, batch %lld of %lldx%lld scenes, %lld iterations\n",
              static_cast<long long>(net.parameter_count()), omp_get_max_threads(), static_cast<long long>(o.batch),
              static_cast<long long>(o.size), static_cast<long long>(o.size), static_cast<long long>(o.iterations));
  reset_peak_memory();
  auto start = std::chrono::steady_clock::now();
  double running = 0;
  for (int64_t it = 0; it < o.iterations; ++it) {
    Scenes batch = scenes.batch(it * o.batch, o.batch);
    Tensor loss = cross_entropy(net.forward(batch.images), batch.labels, Reduction::mean_valid);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    schedule.step();
    running = it == 0 ? loss.item() : 0.9 * running + 0.1 * loss.item();
    if (it == 0 || (it + 1) % 25 == 0) {
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("  iteration %4lld  loss %.4f  (smoothed %.4f)  lr %.5f  %.0f images/s\n",
                  static_cast<long long>(it + 1), loss.item(), running, schedule.lr(),
                  static_cast<double>((it + 1) * o.batch) / seconds);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  net.eval();
  autograd::NoGradGuard no_grad;
  Scenes held_out = scenes.batch(1'000'000, 64);
  std::vector<int64_t> predicted = argmax(net.forward(held_out.images)).to_vector<int64_t>();
  std::vector<uint8_t> truth = held_out.labels.to_vector<uint8_t>();
  int64_t correct = 0, counted = 0;
  std::vector<int64_t> inter(kClasses, 0), uni(kClasses, 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == 255) continue;
    ++counted;
    int64_t t = truth[i], p = predicted[i];
    correct += t == p;
    if (t == p) {
      ++inter[static_cast<size_t>(t)];
      ++uni[static_cast<size_t>(t)];
    } else {
      ++uni[static_cast<size_t>(t)];
      ++uni[static_cast<size_t>(p)];
    }
  }
  std::printf("\ntrained in %.1f s; peak memory %.1f MiB\n", seconds,
              static_cast<double>(memory_stats().peak_allocated_bytes) / (1 << 20));
  std::printf("held-out (64 scenes): pixel accuracy %.1f%%\n", 100.0 * static_cast<double>(correct) / static_cast<double>(counted));
  double miou = 0;
  for (int64_t c = 0; c < kClasses; ++c) {
    double iou = uni[static_cast<size_t>(c)] ? static_cast<double>(inter[static_cast<size_t>(c)]) / static_cast<double>(uni[static_cast<size_t>(c)]) : 0;
    miou += iou / kClasses;
    std::printf("  IoU %-10s %5.1f%%\n", kClassNames[c], 100 * iou);
  }
  std::printf("  mIoU       %5.1f%%\n", 100 * miou);
  return 0;
}

}  // namespace strata::app

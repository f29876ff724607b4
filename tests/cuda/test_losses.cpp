// cross_entropy, nll, bce_with_logits and mse on CUDA against the CPU reference: every reduction,
// u8/i32/i64 labels, (N,H,W,C) and (N,C) scores, ignored pixels (also all of them: NaN for
// mean_valid), other ignore indices; the invalid-label error names the value and its position as on
// the CPU; gradients of both inputs of the elementwise losses.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/ops/losses.h"
#include "engine/ops/softmax.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

const char* name_of(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::sum: return "sum";
    case Reduction::mean_valid: return "mean_valid";
    case Reduction::mean_all: return "mean_all";
  }
  return "?";
}

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

const std::vector<Reduction> kReductions = {Reduction::none, Reduction::sum, Reduction::mean_valid,
                                            Reduction::mean_all};

}  // namespace

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
    for (Reduction r : kReductions) {
      std::string what = shape_str(c.scores) + " " + dtype_name(c.label_dtype) + " labels, ignore_index " +
                         std::to_string(c.ignore_index) + ", reduction " + name_of(r);
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
  for (Reduction r : kReductions) {
    INFO(name_of(r));
    check_cuda_matches_cpu("cross_entropy", [r](const auto& in) { return cross_entropy(in[0], in[1], r); },
                           {x, labels});
    check_cuda_matches_cpu("nll", [r](const auto& in) { return nll(in[0], in[1], r); }, {x, labels});
  }
  Tensor y = cross_entropy(x.detach().to(test::cuda_device()), labels.to(test::cuda_device()), Reduction::mean_valid);
  CHECK(std::isnan(y.item()));
}

TEST_CASE("cuda cross_entropy and nll reject an invalid label naming its value and position", "[cpu]") {
  const Device& gpu = test::cuda_device();
  Generator g(93);
  Tensor x = Tensor::randn({2, 3, 4, 5}, g).to(gpu);
  for (DType dtype : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    std::vector<int64_t> v(24, 1);
    v[19] = 7;  // (n=1, h=1, w=3), the first invalid label
    v[23] = 9;
    v[5] = 255;  // ignored, not an error
    Tensor labels = Tensor::from_vector(v, {2, 3, 4}).to(dtype).to(gpu);
    CHECK_THROWS_WITH(cross_entropy(x, labels, Reduction::mean_valid),
                      Catch::Contains("cross_entropy") && Catch::Contains("label 7 at (n=1, h=1, w=3)") &&
                          Catch::Contains("outside [0, 5)") && Catch::Contains("ignore_index 255"));
    CHECK_THROWS_WITH(nll(x, labels, Reduction::none),
                      Catch::Contains("nll") && Catch::Contains("label 7 at (n=1, h=1, w=3)") &&
                          Catch::Contains("outside [0, 5)") && Catch::Contains("ignore_index 255"));
  }
  std::vector<int32_t> negative = {0, 1, -1};
  Tensor rank2 = Tensor::from_vector(negative, {3}).to(gpu);
  CHECK_THROWS_WITH(cross_entropy(Tensor::randn({3, 4}, g).to(gpu), rank2, Reduction::sum),
                    Catch::Contains("label -1 at (n=2)"));
  CHECK_THROWS_WITH(cross_entropy(x, Tensor::zeros({2, 3, 4}, DType::u8), Reduction::sum),
                    Catch::Contains("devices must match"));
}

TEST_CASE("cuda bce_with_logits and mse match the CPU with gradients for both inputs", "[cpu]") {
  Generator g(94);
  for (const Shape& shape : std::vector<Shape>{{2, 7, 5, 13}, {1, 1, 1, 100003}, {4}}) {
    Tensor logits = random_leaf(shape, g);
    Tensor targets = Tensor::uniform(shape, 0.0, 1.0, g);
    targets.set_requires_grad(true);
    Tensor b = random_leaf(shape, g);
    for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_all}) {
      std::string what = shape_str(shape) + " reduction " + name_of(r);
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

// The case tables of conv2d and linear (tests/support/op_cases.h), shared by the CPU gradient checks
// (tests/engine/test_conv2d.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_conv2d.cpp).
// Convolutions cover every configuration the ResNets and DeepLab heads use (pointwise, strided,
// padded, dilated, the 7x7 stem, rectangular kernels), with and without bias; linear covers rank 2 to 4
// inputs, with and without bias, and an x that needs no gradient. conv2d_activation (forward only, no
// leaves) covers its epilogue on the pointwise and im2col paths: each activation (ReLU, MiB's leaky
// ReLU, identity), with and without bias, a residual per pixel and one broadcast per image.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/conv2d.h"
#include "engine/ops/linear.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

// One convolution: x (N,H,W,C), weight (K,R,S,C), the same stride, padding and dilation on both axes.
struct ConvConfig {
  const char* name;
  int64_t N, H, W, C, K, R, S, stride, pad, dilation;
  bool bias;
};

inline OpCase conv2d_case(const ConvConfig& c, uint64_t seed) {
  auto inputs = [c](Generator& g) {
    return std::vector<Tensor>{leaf({c.N, c.H, c.W, c.C}, g), leaf({c.K, c.R, c.S, c.C}, g, 0.5),
                               c.bias ? leaf({c.K}, g) : Tensor()};
  };
  const Conv2dParams p = Conv2dParams::same(c.stride, c.pad, c.dilation);
  return {std::string("conv2d ") + c.name, inputs,
          [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); }, seed};
}

inline OpCases conv2d_cases() {
  const ConvConfig configs[] = {
      {"pointwise", 2, 4, 3, 5, 3, 1, 1, 1, 0, 1, true},     {"pointwise_strided", 2, 5, 4, 3, 2, 1, 1, 2, 0, 1, false},
      {"3x3_pad1", 1, 5, 4, 3, 2, 3, 3, 1, 1, 1, true},      {"3x3_stride2", 2, 5, 5, 2, 3, 3, 3, 2, 1, 1, false},
      {"3x3_dilation2", 1, 6, 5, 2, 2, 3, 3, 1, 2, 2, true}, {"7x7_stride2_pad3", 1, 7, 6, 3, 2, 7, 7, 2, 3, 1, false},
      {"rect_2x3", 1, 4, 5, 2, 2, 2, 3, 1, 0, 1, true},
  };
  OpCases cases;
  uint64_t seed = 200;
  for (const ConvConfig& c : configs) cases.push_back(conv2d_case(c, seed++));
  return cases;
}

// conv2d_activation(x, w, bias, residual, slope): `residual` 0 none, 1 per pixel (N,P,Q,K), 2 per
// image (N,1,1,K).
struct ConvActivationConfig {
  ConvConfig conv;
  int residual;
  double slope;
};

inline std::vector<ConvActivationConfig> conv2d_activation_configs() {
  return {
      {{"pointwise, ReLU", 2, 4, 3, 5, 3, 1, 1, 1, 0, 1, true}, 0, 0.0},
      {{"pointwise, residual, leaky ReLU", 2, 4, 3, 5, 6, 1, 1, 1, 0, 1, true}, 1, 0.01},
      {{"pointwise, image residual, leaky ReLU", 2, 4, 3, 5, 6, 1, 1, 1, 0, 1, true}, 2, 0.01},
      {{"3x3 stride 2, identity, no bias", 2, 7, 6, 3, 4, 3, 3, 2, 1, 1, false}, 0, 1.0},
      {{"3x3 dilation 2, residual, ReLU", 1, 6, 5, 2, 3, 3, 3, 1, 2, 2, true}, 1, 0.0},
      {{"7x7 stem, image residual, identity", 2, 9, 8, 3, 4, 7, 7, 2, 3, 1, true}, 2, 1.0},
  };
}

inline OpCase conv2d_activation_case(const ConvActivationConfig& a, uint64_t seed) {
  const ConvConfig c = a.conv;
  const int64_t P = conv2d_output_size(c.H, c.R, c.stride, c.pad, c.dilation);
  const int64_t Q = conv2d_output_size(c.W, c.S, c.stride, c.pad, c.dilation);
  auto inputs = [c, a, P, Q](Generator& g) {
    Tensor residual;
    if (a.residual == 1) residual = leaf({c.N, P, Q, c.K}, g).detach();
    if (a.residual == 2) residual = leaf({c.N, 1, 1, c.K}, g).detach();
    return std::vector<Tensor>{leaf({c.N, c.H, c.W, c.C}, g).detach(), leaf({c.K, c.R, c.S, c.C}, g, 0.5).detach(),
                               c.bias ? leaf({c.K}, g).detach() : Tensor(), residual};
  };
  const Conv2dParams p = Conv2dParams::same(c.stride, c.pad, c.dilation);
  const double slope = a.slope;
  return {std::string("conv2d_activation ") + c.name, inputs,
          [p, slope](const std::vector<Tensor>& in) { return conv2d_activation(in[0], in[1], in[2], in[3], slope, p); },
          seed};
}

inline OpCases conv2d_activation_cases() {
  OpCases cases;
  uint64_t seed = 240;
  for (const ConvActivationConfig& a : conv2d_activation_configs()) cases.push_back(conv2d_activation_case(a, seed++));
  return cases;
}

inline OpCases linear_cases() {
  struct Config {
    const char* name;
    Shape x, weight;
    bool bias;
    bool x_grad = true;
  };
  const Config configs[] = {
      {"rank 2, bias", {4, 6}, {3, 6}, true},
      {"rank 2, bias, larger", {7, 13}, {5, 13}, true},
      {"rank 3, no bias", {2, 3, 5}, {4, 5}, false},
      {"rank 3, bias", {2, 9, 17}, {11, 17}, true},
      {"rank 4 NHWC features (a 1x1 conv as a GEMM), bias", {2, 7, 5, 8}, {6, 8}, true},
      {"x without grad", {6, 10}, {4, 10}, true, false},
  };
  OpCases cases;
  uint64_t seed = 220;
  for (const Config& c : configs) {
    auto inputs = [c](Generator& g) {
      Tensor x = leaf(c.x, g);
      return std::vector<Tensor>{c.x_grad ? x : x.detach(), leaf(c.weight, g),
                                 c.bias ? leaf({c.weight[0]}, g) : Tensor()};
    };
    cases.push_back({std::string("linear ") + c.name, inputs,
                     [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, seed++});
  }
  return cases;
}

}  // namespace strata::test

// Parameter initialisation, seeded (PyTorch's torch.nn.init semantics; fans computed for strata's
// layouts: conv weights (K,R,S,C) have fan_in = C*R*S and fan_out = K*R*S; linear weights (out,in)
// have fan_in = in, fan_out = out). Every function overwrites `t` in place from `generator`.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace strata::nn::init {

enum class FanMode { fan_in, fan_out };

// torch.nn.init.calculate_gain: "linear"/"conv2d"/"sigmoid" 1, "relu" sqrt(2),
// "leaky_relu" sqrt(2 / (1 + param^2)), "tanh" 5/3. Unknown names throw.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
int64_t fan(const Tensor& weight, FanMode mode);

void uniform_(Tensor& t, double low, double high, Generator& generator);
void normal_(Tensor& t, double mean, double std, Generator& generator);
// std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)
void kaiming_normal_(Tensor& t, Generator& generator, FanMode mode = FanMode::fan_in,
                     const std::string& nonlinearity = "leaky_relu", double a = 0);
// bound = gain * sqrt(3 / fan)
void kaiming_uniform_(Tensor& t, Generator& generator, double a = 0, FanMode mode = FanMode::fan_in,
                      const std::string& nonlinearity = "leaky_relu");
// std = gain * sqrt(2 / (fan_in + fan_out))
void xavier_normal_(Tensor& t, Generator& generator, double gain = 1.0);
// PyTorch's default for Conv2d/Linear: weight kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). (The fine-tuning baseline keeps this
// init for new classifiers, SPEC §3.1.)
void torch_default_(Tensor& weight, Tensor& bias, Generator& generator);

}  // namespace strata::nn::init

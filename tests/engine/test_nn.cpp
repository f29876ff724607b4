// nn::Module: PyTorch state-dict names, loading (strict and reporting), train/eval, seeded init.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/nn/normalization.h"
#include "engine/ops/conv2d.h"
#include "engine/safetensors.h"
#include "tests/support/compare.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;

namespace {

std::shared_ptr<nn::Sequential> small_net(Generator& g) {
  auto net = std::make_shared<nn::Sequential>();
  net->append(std::make_shared<nn::Conv2d>(3, 8, 3, g, Conv2dParams::same(1, 1)));
  net->append(std::make_shared<nn::ReLU>());
  net->append(std::make_shared<nn::Conv2d>(8, 4, 1, g, Conv2dParams{}, false));
  return net;
}

double stddev(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  return std::sqrt(var / static_cast<double>(v.size()));
}

}  // namespace

TEST_CASE("nn::Sequential names parameters as torch.nn.Sequential does", "[cpu]") {
  Generator g(1);
  auto net = small_net(g);
  std::vector<std::string> names;
  for (auto& [name, t] : net->named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight"});
  CHECK(net->parameter_count() == 8 * 3 * 3 * 3 + 8 + 4 * 8);
  CHECK(net->state_dict().at("0.weight").shape() == Shape{8, 3, 3, 3});
  for (auto& t : net->parameters()) CHECK(t.requires_grad());
}

TEST_CASE("nn::Module train and eval propagate to children", "[cpu]") {
  Generator g(2);
  auto net = small_net(g);
  net->eval();
  for (auto& [name, child] : net->children()) CHECK_FALSE(child->is_training());
  net->train();
  for (auto& [name, child] : net->children()) CHECK(child->is_training());
}

TEST_CASE("nn::Module state dict round trip through safetensors reproduces outputs", "[cpu]") {
  Generator g(3), h(4);
  auto a = small_net(g), b = small_net(h);
  Tensor x = Tensor::randn({1, 5, 6, 3}, g);
  auto path = std::filesystem::temp_directory_path() / "strata_nn_roundtrip.safetensors";
  save_safetensors(path, a->state_dict());
  Tensor before_b = b->forward(x);
  nn::LoadReport report = b->load_state_dict(load_safetensors(path).tensors, true, path.string());
  CHECK(report.loaded.size() == 3);
  CHECK(b->forward(x).to_vector<float>() == a->forward(x).to_vector<float>());
  CHECK(before_b.to_vector<float>() != a->forward(x).to_vector<float>());
}

TEST_CASE("nn::Module load_state_dict reports and rejects mismatches", "[cpu]") {
  Generator g(5);
  auto net = small_net(g);
  TensorMap state = net->state_dict();
  std::vector<float> original = state.at("0.weight").to_vector<float>();

  TensorMap missing = state;
  missing.erase("0.bias");
  missing.emplace("extra.weight", Tensor::zeros({1}));
  CHECK_THROWS_WITH(net->load_state_dict(missing, true, "ckpt.safetensors"),
                    Catch::Contains("ckpt.safetensors") && Catch::Contains("missing: 0.bias") &&
                        Catch::Contains("unexpected: extra.weight"));
  nn::LoadReport report = net->load_state_dict(missing, false);
  CHECK(report.missing == std::vector<std::string>{"0.bias"});
  CHECK(report.unexpected == std::vector<std::string>{"extra.weight"});

  TensorMap wrong = state;
  wrong["0.weight"] = Tensor::ones({8, 3, 3, 4});
  wrong["2.weight"] = Tensor::ones({4, 1, 1, 8});
  CHECK_THROWS_WITH(net->load_state_dict(wrong), Catch::Contains("'0.weight' has shape [8,3,3,4]") &&
                                                     Catch::Contains("expects [8,3,3,3]"));
  CHECK(net->state_dict().at("0.weight").to_vector<float>() == original);  // nothing half-loaded
  CHECK(net->state_dict().at("2.weight").to_vector<float>() != std::vector<float>(32, 1.0f));
}

TEST_CASE("nn::init draws seeded values with the documented scale", "[cpu]") {
  Generator g(6);
  Tensor w = Tensor::empty({256, 3, 3, 64});  // fan_in 576, fan_out 2304
  nn::init::kaiming_normal_(w, g, nn::init::FanMode::fan_out, "relu");
  CHECK(stddev(w) == test::approx(std::sqrt(2.0 / 2304), test::kSampleStddev));
  nn::init::xavier_normal_(w, g, nn::init::calculate_gain("leaky_relu", 0.01));
  CHECK(stddev(w) == test::approx(std::sqrt(2.0 / (1 + 1e-4)) * std::sqrt(2.0 / (576 + 2304)), test::kSampleStddev));
  Tensor bias = Tensor::empty({256});
  nn::init::torch_default_(w, bias, g);
  double bound = 1.0 / std::sqrt(576.0);
  for (float v : w.to_vector<float>()) REQUIRE(std::fabs(v) <= bound);
  CHECK(stddev(w) == test::approx(bound / std::sqrt(3.0), test::kSampleStddev));
  Generator g1(7), g2(7);
  nn::Conv2d c1(4, 4, 3, g1), c2(4, 4, 3, g2);
  CHECK(c1.weight().to_vector<float>() == c2.weight().to_vector<float>());
  CHECK_THROWS_WITH(nn::init::calculate_gain("swish"), Catch::Contains("unknown nonlinearity"));
}

TEST_CASE("nn::Conv2d forward equals the conv2d op with its parameters", "[cpu]") {
  Generator g(8);
  nn::Conv2d conv(3, 5, 3, g, Conv2dParams::same(2, 1));
  Tensor x = Tensor::randn({2, 7, 9, 3}, g);
  CHECK(conv(x).to_vector<float>() == conv2d(x, conv.weight(), conv.bias(), conv.params()).to_vector<float>());
  CHECK(conv(x).shape() == Shape{2, 4, 5, 5});
}

TEST_CASE("a torch.nn.Sequential state dict loads by name and trains identically", "[torch]") {
  test::TorchCase c("nn_modules", "sequential_conv_bn_relu");
  Generator g(9);
  nn::Sequential net;
  auto conv1 = std::make_shared<nn::Conv2d>(3, 6, 3, g, Conv2dParams::same(1, 1), false);
  auto bn = std::make_shared<nn::BatchNorm2d>(6);
  auto conv2 = std::make_shared<nn::Conv2d>(6, 4, 1, g);
  net.append(conv1);
  net.append(bn);
  net.append(std::make_shared<nn::ReLU>());
  net.append(conv2);
  TensorMap state;
  for (const auto& [name, t] : net.state_dict()) state.emplace(name, c["state." + name]);
  nn::LoadReport report = net.load_state_dict(state);
  CHECK(report.loaded.size() == 8);  // 1 + 5 (with num_batches_tracked) + 2

  net.train();
  Tensor y = net.forward(c["x"]);
  CHECK_CLOSE(y, c["out"]);
  y.backward(c["grad_out"]);
  for (const auto& [name, p] : net.named_parameters()) {
    INFO(name);
    CHECK_CLOSE(p.grad(), c["grad." + name]);
  }
  CHECK_CLOSE(bn->running_mean(), c["after.1.running_mean"]);
  CHECK_CLOSE(bn->running_var(), c["after.1.running_var"]);
  CHECK(net.state_dict().at("1.num_batches_tracked").item() == c["after.1.num_batches_tracked"].item());
}

TEST_CASE("nn::Module::to casts parameters and buffers in place, seen through every handle", "[cpu]") {
  Generator g(10);
  nn::Sequential net;
  auto conv = std::make_shared<nn::Conv2d>(3, 4, 3, g, Conv2dParams::same(1, 1));
  auto bn = std::make_shared<nn::BatchNorm2d>(4);
  net.append(conv);
  net.append(bn);
  Tensor held = conv->weight();  // e.g. an optimizer's handle
  std::vector<float> before = held.to_vector<float>();
  net.to(DType::f64);
  CHECK(held.dtype() == DType::f64);
  CHECK(conv->weight().dtype() == DType::f64);
  CHECK(bn->running_var().dtype() == DType::f64);
  CHECK(net.state_dict().at("1.num_batches_tracked").dtype() == DType::i64);  // integers untouched
  CHECK(held.to_vector<float>() == before);
  CHECK(net.forward(Tensor::randn({1, 5, 5, 3}, g, DType::f64)).dtype() == DType::f64);
  CHECK_THROWS_WITH(net.to(DType::i32), Catch::Contains("floating"));
}

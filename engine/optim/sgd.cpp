#include "engine/optim/sgd.h"

#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "kernels/cpu/sgd.h"
#include "kernels/cuda/sgd.h"

namespace strata::optim {

SGD::SGD(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  std::set<std::string> names;
  for (ParamGroup& g : groups_) {
    check(g.lr >= 0 && g.momentum >= 0 && g.weight_decay >= 0 && g.dampening >= 0, "SGD: group '", g.name,
          "' has a negative hyper-parameter (lr ", g.lr, ", momentum ", g.momentum, ", weight_decay ",
          g.weight_decay, ", dampening ", g.dampening, ")");
    check(!g.nesterov || (g.momentum > 0 && g.dampening == 0), "SGD: group '", g.name,
          "': Nesterov momentum requires momentum > 0 and dampening 0");
    if (g.initial_lr < 0) g.initial_lr = g.lr;
    for (const auto& [name, p] : g.params) {
      check(names.insert(name).second, "SGD: parameter '", name, "' appears in more than one group");
      check(p.defined() && (p.dtype() == DType::f32 || p.dtype() == DType::f64), "SGD: parameter '", name,
            "' must be f32 or f64, got ", p.describe());
    }
  }
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (size_t group = 0; group < groups_.size(); ++group) {
    const ParamGroup& g = groups_[group];
    kernels::common::SgdHyper hyper{g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov};
    if (!device_lr_.empty()) hyper.lr_at = device_lr_[group].data<double>();
    for (const auto& [name, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      check(grad.shape() == p.shape() && grad.device() == p.device(), "SGD: gradient of '", name, "' ",
            grad.describe(), " does not match ", p.describe());
      Tensor gc = grad.to(p.dtype()).contiguous();
      bool first = false;
      Tensor buffer;
      if (g.momentum != 0) {
        auto it = momentum_buffers_.find(name);
        first = it == momentum_buffers_.end();
        if (first) it = momentum_buffers_.emplace(name, Tensor::empty(p.shape(), p.dtype(), p.device())).first;
        buffer = it->second;
      }
      Tensor param = p.detach();
      dispatch("SGD::step", param, [&](auto tag, const auto& backend) {
        using T = decltype(tag);
        sgd_step(param.data<T>(), gc.data<T>(), buffer.defined() ? buffer.data<T>() : nullptr, p.numel(), hyper, first,
                 backend);
      });
    }
  }
  ++steps_;
}

void SGD::use_device_lr(const Device& device) {
  device_lr_.clear();
  for (const ParamGroup& g : groups_) {
    for (const auto& [name, p] : g.params) {
      check(p.device() == device, "SGD::use_device_lr(", device.str(), "): parameter '", name, "' is on ",
            p.device().str());
    }
    device_lr_.push_back(Tensor::full({1}, g.lr, DType::f64, device));
  }
}

void SGD::write_device_lr() {
  for (size_t group = 0; group < device_lr_.size(); ++group) device_lr_[group].fill_(groups_[group].lr);
}

void SGD::zero_grad() {
  for (ParamGroup& g : groups_) {
    for (auto& [name, p] : g.params) p.set_grad(Tensor());
  }
}

TensorMap SGD::state_dict(Metadata& metadata) const {
  TensorMap out;
  for (const auto& [name, buffer] : momentum_buffers_) out.emplace("momentum_buffer." + name, buffer);
  metadata["sgd.steps"] = std::to_string(steps_);
  return out;
}

void SGD::load_state_dict(const TensorMap& state, const Metadata& metadata) {
  std::map<std::string, Tensor> params;
  for (const ParamGroup& g : groups_) {
    for (const auto& [name, p] : g.params) params.emplace(name, p);
  }
  std::map<std::string, Tensor> buffers;
  const std::string prefix = "momentum_buffer.";
  for (const auto& [key, t] : state) {
    if (key.rfind(prefix, 0) != 0) continue;
    std::string name = key.substr(prefix.size());
    auto it = params.find(name);
    check(it != params.end(), "SGD::load_state_dict: momentum buffer for unknown parameter '", name, "'");
    check(t.shape() == it->second.shape(), "SGD::load_state_dict: momentum buffer '", name, "' has shape ",
          shape_str(t.shape()), " but the parameter is ", it->second.describe());
    // A copy on the parameter's device (the state is usually read from a file on the CPU).
    Tensor buffer = t.to(it->second.dtype());
    buffers.emplace(name, buffer.device() == it->second.device() ? buffer.clone() : buffer.to(it->second.device()));
  }
  auto steps = metadata.find("sgd.steps");
  check(steps != metadata.end(), "SGD::load_state_dict: missing 'sgd.steps' in the metadata");
  momentum_buffers_ = std::move(buffers);
  steps_ = std::stoll(steps->second);
}

PolyLR::PolyLR(SGD& optimizer, int64_t max_iterations, double power, double min_lr)
    : optimizer_(optimizer), max_iterations_(max_iterations), power_(power), min_lr_(min_lr) {
  check(max_iterations > 0, "PolyLR: max_iterations must be > 0, got ", max_iterations);
  apply();
}

void PolyLR::step() {
  ++iteration_;
  apply();
}

void PolyLR::set_iteration(int64_t iteration) {
  check(iteration >= 0, "PolyLR: negative iteration ", iteration);
  iteration_ = iteration;
  apply();
}

double PolyLR::lr(size_t group) const { return optimizer_.groups().at(group).lr; }

void PolyLR::apply() {
  double progress = std::min(1.0, static_cast<double>(iteration_) / static_cast<double>(max_iterations_));
  double factor = std::pow(1.0 - progress, power_);
  for (ParamGroup& g : optimizer_.groups()) g.lr = std::max(g.initial_lr * factor, min_lr_);
}

}  // namespace strata::optim

#include "engine/nn/module.h"

#include <map>
#include <set>

namespace strata::nn {

std::string LoadReport::str() const {
  std::string s = cat("loaded ", loaded.size(), " tensors");
  auto list = [&](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    s += cat("; ", keys.size(), " ", what, ":");
    for (size_t i = 0; i < keys.size() && i < 20; ++i) s += " " + keys[i];
    if (keys.size() > 20) s += cat(" ... (", keys.size() - 20, " more)");
  };
  list("missing", missing);
  list("unexpected", unexpected);
  return s;
}

void Module::check_new_name(const std::string& name) const {
  check(!name.empty() && name.find('.') == std::string::npos, "nn::Module: invalid name '", name,
        "' (non-empty, no dots)");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list) {
      if (entry.first == name) return true;
    }
    return false;
  };
  check(!taken(parameters_) && !taken(buffers_) && !taken(children_), "nn::Module: name '", name,
        "' registered twice");
}

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name);
  check(value.defined() && is_floating(value.dtype()), "nn::Module: parameter '", name, "' must be a floating tensor, got ",
        value.describe());
  value.set_requires_grad(true);
  parameters_.emplace_back(name, std::move(value));
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  check(value.defined(), "nn::Module: buffer '", name, "' is undefined");
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  check(module != nullptr, "nn::Module: child '", name, "' is null");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

TensorMap Module::state_dict() const {
  TensorMap out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t);
  for (auto& [name, t] : named_buffers()) out.emplace(name, t);
  return out;
}

LoadReport Module::load_state_dict(const TensorMap& state, bool strict, const std::string& source) {
  LoadReport report;
  std::map<std::string, Tensor> own;
  for (auto& [name, t] : named_parameters()) own.emplace(name, t);
  for (auto& [name, t] : named_buffers()) own.emplace(name, t);
  for (const auto& [name, t] : own) {
    if (!state.count(name)) report.missing.push_back(name);
  }
  for (const auto& [name, t] : state) {
    if (!own.count(name)) report.unexpected.push_back(name);
  }
  if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
    throw Error(cat("load_state_dict from ", source, ": keys do not match the model (", report.str(), ")"));
  }
  // Validate every shape before writing anything, so a bad file leaves the model untouched.
  for (const auto& [name, target] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    check(it->second.shape() == target.shape(), "load_state_dict from ", source, ": '", name, "' has shape ",
          shape_str(it->second.shape()), " but the model expects ", shape_str(target.shape()));
  }
  for (auto& [name, target] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Tensor destination = target.detach();
    destination.copy_(it->second);
    report.loaded.push_back(name);
  }
  return report;
}

namespace {

// Replaces what `t`'s handle refers to with `converted`, so every copy of the handle sees it.
void rebind(const Tensor& t, const Tensor& converted) {
  TensorImpl& impl = t.impl();
  impl.storage = converted.impl().storage;
  impl.shape = converted.impl().shape;
  impl.strides = converted.impl().strides;
  impl.offset = converted.impl().offset;
  impl.dtype = converted.impl().dtype;
  impl.grad.reset();
}

}  // namespace

void Module::to(DType dtype) {
  check(is_floating(dtype), "nn::Module::to: modules hold floating parameters, cannot cast to ", dtype_name(dtype));
  auto cast = [&](const Tensor& t) {
    if (is_floating(t.dtype()) && t.dtype() != dtype) rebind(t, t.detach().to(dtype).contiguous());
  };
  for (const auto& [name, t] : named_parameters()) cast(t);
  for (const auto& [name, t] : named_buffers()) cast(t);
}

void Module::to(const Device& device) {
  auto move = [&](const Tensor& t) {
    if (!(t.device() == device)) rebind(t, t.detach().to(device));
  };
  for (const auto& [name, t] : named_parameters()) move(t);
  for (const auto& [name, t] : named_buffers()) move(t);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) t.set_grad(Tensor());
}

Sequential::Sequential(std::vector<std::shared_ptr<Layer>> layers) {
  for (auto& layer : layers) append(std::move(layer));
}

void Sequential::append(std::shared_ptr<Layer> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

}  // namespace strata::nn

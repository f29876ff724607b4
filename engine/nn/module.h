// nn::Module: named parameters, buffers and child modules with PyTorch's state-dict names
// ("layer1.0.conv1.weight"), train/eval mode, and state-dict loading with a report of missing and
// unexpected keys. A Layer is a Module with one tensor in and one out (what Sequential chains).
//
// Parameters and buffers are registered once, in the constructor; their Tensor handles never
// change afterwards (load_state_dict copies values into them), so code holding a handle to a
// parameter (the optimizer, a layer's forward) always sees the current values.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace strata::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> loaded;
  std::string str() const;              // "loaded 320 tensors; missing: ...; unexpected: ..."
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // recursive, in registration order
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;        // number of parameter elements
  TensorMap state_dict() const;           // parameters and buffers by name

  // Copies every tensor of `state` whose name exists in this module into it. A shape or dtype
  // mismatch throws naming the key, both shapes and `source`. With strict, a missing or unexpected
  // key throws too (listing them); otherwise they are only reported.
  LoadReport load_state_dict(const TensorMap& state, bool strict = true, const std::string& source = "state dict");

  // Casts (floating tensors only) or moves every parameter and buffer in place, like PyTorch's
  // module.to(): the handles layers and optimizers hold see the new values. Gradients are cleared.
  void to(DType dtype);
  void to(const Device& device);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // clears .grad of every parameter

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  // Registers a parameter (marked requires_grad) or buffer; returns the stored handle.
  Tensor& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Chains layers; children are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Layer>> layers);
  void append(std::shared_ptr<Layer> layer);
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<Layer>& operator[](size_t i) const { return layers_.at(i); }
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace strata::nn

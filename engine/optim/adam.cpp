#include "engine/optim/adam.h"

#include <set>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "kernels/cpu/adam.h"
#include "kernels/cuda/adam.h"

namespace strata::optim {

namespace {

const char* const kBuffers[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

}  // namespace

Adam::Adam(std::vector<AdamGroup> groups) : groups_(std::move(groups)) {
  std::set<std::string> names;
  for (const AdamGroup& g : groups_) {
    check(g.lr >= 0 && g.eps >= 0 && g.weight_decay >= 0, "Adam: group '", g.name,
          "' has a negative hyper-parameter (lr ", g.lr, ", eps ", g.eps, ", weight_decay ", g.weight_decay, ")");
    check(g.beta1 >= 0 && g.beta1 < 1 && g.beta2 >= 0 && g.beta2 < 1, "Adam: group '", g.name,
          "' needs betas in [0, 1), got (", g.beta1, ", ", g.beta2, ")");
    for (const auto& [name, p] : g.params) {
      check(names.insert(name).second, "Adam: parameter '", name, "' appears in more than one group");
      check(p.defined() && (p.dtype() == DType::f32 || p.dtype() == DType::f64), "Adam: parameter '", name,
            "' must be f32 or f64, got ", p.describe());
    }
  }
}

void Adam::step() {
  autograd::NoGradGuard no_grad;
  for (const AdamGroup& g : groups_) {
    kernels::common::AdamHyper hyper{g.lr, g.beta1, g.beta2, g.eps, g.weight_decay, g.amsgrad};
    for (const auto& [name, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      check(grad.shape() == p.shape() && grad.device() == p.device(), "Adam: gradient of '", name, "' ",
            grad.describe(), " does not match ", p.describe());
      Tensor gc = grad.to(p.dtype()).contiguous();
      auto it = state_.find(name);
      if (it == state_.end()) {
        ParamState s;
        s.exp_avg = Tensor::zeros(p.shape(), p.dtype(), p.device());
        s.exp_avg_sq = Tensor::zeros(p.shape(), p.dtype(), p.device());
        if (g.amsgrad) s.max_exp_avg_sq = Tensor::zeros(p.shape(), p.dtype(), p.device());
        it = state_.emplace(name, std::move(s)).first;
      }
      ParamState& s = it->second;
      check(!g.amsgrad || s.max_exp_avg_sq.defined(), "Adam: parameter '", name,
            "' has no AMSGrad maximum (its state was saved without amsgrad)");
      ++s.step;
      Tensor param = p.detach();
      dispatch("Adam::step", param, [&](auto tag, const auto& backend) {
        using T = decltype(tag);
        adam_step(param.data<T>(), gc.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(),
                  g.amsgrad ? s.max_exp_avg_sq.data<T>() : nullptr, p.numel(), hyper, s.step, backend);
      });
    }
  }
}

void Adam::zero_grad() {
  for (AdamGroup& g : groups_) {
    for (auto& [name, p] : g.params) p.set_grad(Tensor());
  }
}

TensorMap Adam::state_dict(Metadata& metadata) const {
  TensorMap out;
  for (const auto& [name, s] : state_) {
    out.emplace("exp_avg." + name, s.exp_avg);
    out.emplace("exp_avg_sq." + name, s.exp_avg_sq);
    if (s.max_exp_avg_sq.defined()) out.emplace("max_exp_avg_sq." + name, s.max_exp_avg_sq);
    metadata["adam.step." + name] = std::to_string(s.step);
  }
  return out;
}

void Adam::load_state_dict(const TensorMap& state, const Metadata& metadata) {
  std::map<std::string, Tensor> params;
  for (const AdamGroup& g : groups_) {
    for (const auto& [name, p] : g.params) params.emplace(name, p);
  }
  std::map<std::string, ParamState> restored;
  for (const auto& [key, t] : state) {
    for (int b = 0; b < 3; ++b) {
      const std::string prefix = std::string(kBuffers[b]) + ".";
      if (key.rfind(prefix, 0) != 0) continue;
      std::string name = key.substr(prefix.size());
      auto it = params.find(name);
      check(it != params.end(), "Adam::load_state_dict: '", key, "' is for unknown parameter '", name, "'");
      check(t.shape() == it->second.shape(), "Adam::load_state_dict: '", key, "' has shape ", shape_str(t.shape()),
            " but the parameter is ", it->second.describe());
      // A copy on the parameter's device (the state is usually read from a file on the CPU).
      Tensor buffer = t.to(it->second.dtype());
      buffer = buffer.device() == it->second.device() ? buffer.clone() : buffer.to(it->second.device());
      ParamState& s = restored[name];
      (b == 0 ? s.exp_avg : b == 1 ? s.exp_avg_sq : s.max_exp_avg_sq) = buffer;
    }
  }
  for (auto& [name, s] : restored) {
    check(s.exp_avg.defined() && s.exp_avg_sq.defined(), "Adam::load_state_dict: parameter '", name,
          "' needs both 'exp_avg.", name, "' and 'exp_avg_sq.", name, "'");
    auto step = metadata.find("adam.step." + name);
    check(step != metadata.end(), "Adam::load_state_dict: missing 'adam.step.", name, "' in the metadata");
    s.step = std::stoll(step->second);
    check(s.step >= 1, "Adam::load_state_dict: 'adam.step.", name, "' must be >= 1, got ", s.step);
  }
  state_ = std::move(restored);
}

}  // namespace strata::optim

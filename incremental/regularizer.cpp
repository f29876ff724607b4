#include "incremental/regularizer.h"

#include <algorithm>
#include <utility>

#include "engine/autograd.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/regularizer.h"
#include "kernels/common/regularizer.h"

namespace strata::incremental {

namespace {

namespace cm = kernels::common;

// Runs `body` with T the element type of `t` (f32 or f64).
template <class Body>
void with_type(const char* what, const Tensor& t, Body body) {
  if (t.dtype() == DType::f32) {
    body(float{});
  } else if (t.dtype() == DType::f64) {
    body(double{});
  } else {
    throw Error(cat(what, ": expected f32 or f64, got ", t.describe()));
  }
}

// A host copy of `t` (a new tensor, never a view of t's storage).
Tensor host_copy(const Tensor& t) { return t.device().is_cpu() ? t.clone() : t.to(Device::cpu()); }

const char* importance_prefix(RegularizerKind kind) { return kind == RegularizerKind::pi ? "score." : "fisher."; }

}  // namespace

Tensor min_max_normalized(const Tensor& host) {
  check(host.device().is_cpu(), "min_max_normalized: expected a CPU tensor, got ", host.describe());
  Tensor out = host.clone();
  with_type("min_max_normalized", out, [&](auto tag) {
    using T = decltype(tag);
    T* m = out.data<T>();
    const int64_t n = out.numel();
    if (n == 0) return;
    const auto [lo, hi] = std::minmax_element(m, m + n);
    const T min = *lo, max = *hi;
    for (int64_t i = 0; i < n; ++i) m[i] = cm::min_max_normalized(m[i], min, max);
  });
  return out;
}

const char* regularizer_name(RegularizerKind kind) {
  switch (kind) {
    case RegularizerKind::ewc: return "EWC";
    case RegularizerKind::pi: return "PI";
    case RegularizerKind::rw: return "RW";
    case RegularizerKind::none: break;
  }
  return "none";
}

WeightRegularizer::WeightRegularizer(const RegularizerSettings& settings, const nn::NamedTensors& parameters, int step,
                                     const TensorMap* previous_weights, const PreviousMethod& previous,
                                     const std::string& source)
    : settings_(settings), step_(step) {
  const RegularizerKind kind = settings.kind;
  check(kind != RegularizerKind::none, "WeightRegularizer: no regulariser chosen");
  const char* name = regularizer_name(kind);
  const bool penalize = step >= 1;
  if (penalize) {
    check(previous_weights != nullptr, name, ": step ", step, " needs the previous step's weights");
    // The importance this method penalises with: none at all is the references' silent no-op.
    std::vector<std::string> needed = {importance_prefix(kind)};
    if (kind == RegularizerKind::rw) needed.push_back("score.");
    for (const std::string& prefix : needed) {
      const bool found = std::any_of(previous.state.begin(), previous.state.end(),
                                     [&](const auto& entry) { return entry.first.rfind(prefix, 0) == 0; });
      check(found, source, " holds no ", name, " importance ('", prefix, "*' tensors): step ", step - 1,
            " was trained with ", previous.method.empty() ? std::string("an unknown method") : previous.method,
            ", and ", name, " at step ", step,
            " penalises with the importance its previous step accumulated; train step ", step - 1, " with --method ",
            name, " (the references would train on silently without the penalty)");
    }
  }
  const bool fisher = kind != RegularizerKind::pi;
  const bool path = kind != RegularizerKind::ewc;
  for (const auto& [key, param] : parameters) {
    if (!param.requires_grad()) continue;
    Entry e;
    e.name = key;
    e.param = param;
    const Device device = param.device();
    auto previous_tensor = [&](const std::string& prefix) -> Tensor {
      auto it = previous.state.find(prefix + key);
      if (it == previous.state.end()) return Tensor();
      check(it->second.shape() == param.shape(), source, ": '", prefix, key, "' has shape ", it->second.describe(),
            ", expected that of the parameter, ", param.describe());
      return it->second.to(param.dtype());
    };
    if (fisher) {
      const Tensor old = penalize ? previous_tensor("fisher.") : Tensor();
      // A copy: the update writes it in place.
      e.fisher = old.defined() ? old.to(device).clone() : Tensor::ones(param.shape(), param.dtype(), device);
    }
    if (path) {
      e.path = Tensor::zeros(param.shape(), param.dtype(), device);
      e.previous = Tensor::zeros(param.shape(), param.dtype(), device);
    }
    if (kind == RegularizerKind::pi) e.start = param.detach().clone();
    const auto anchor = previous_weights ? previous_weights->find(key) : TensorMap::const_iterator();
    if (penalize && anchor != previous_weights->end()) {
      e.anchor = anchor->second.to(param.dtype()).to(device).contiguous();
      Tensor weight;
      auto add_importance = [&](const std::string& prefix) {
        const Tensor old = previous_tensor(prefix);
        check(old.defined(), source, " holds ", name, " importance but none for the parameter '", key, "' ('", prefix,
              key, "')");
        const Tensor host = host_copy(old);
        if (prefix == "score.") e.old_score = host;
        const Tensor w = settings.normalize ? min_max_normalized(host) : host;
        weight = weight.defined() ? add(weight, w) : w;
      };
      if (fisher) add_importance("fisher.");
      if (path) add_importance("score.");
      e.weight = weight.to(device).contiguous();
    }
    entries_.push_back(std::move(e));
  }
}

ImportanceUpdate WeightRegularizer::next_update() const {
  const RegularizerKind kind = settings_.kind;
  ImportanceUpdate u;
  u.alpha = settings_.alpha;
  u.fisher = kind != RegularizerKind::pi;
  if (kind == RegularizerKind::pi) {
    u.path = ImportancePath::path_integral;
    u.accumulate = updates_ > 0;
    u.remember = true;
  } else if (kind == RegularizerKind::rw) {
    const bool path_step = updates_ % settings_.iterations == 0;
    u.path = ImportancePath::riemannian_walk;
    u.accumulate = path_step && updates_ > 0;
    u.remember = path_step;
  }
  return u;
}

void WeightRegularizer::update() {
  autograd::NoGradGuard no_grad;
  const ImportanceUpdate u = next_update();
  for (Entry& e : entries_) {
    Tensor grad = e.param.grad();
    if (!grad.defined()) continue;
    grad = grad.to(e.param.dtype()).contiguous();
    importance_update(e.fisher, e.path, e.previous, e.param.detach(), grad, u);
  }
  ++updates_;
}

Tensor WeightRegularizer::update_and_penalize() {
  autograd::NoGradGuard no_grad;
  const ImportanceUpdate u = next_update();
  std::vector<Tensor> values;
  for (Entry& e : entries_) {
    Tensor grad = e.param.grad();
    if (!grad.defined()) continue;
    grad = grad.to(e.param.dtype()).contiguous();
    if (step_ >= 1 && e.anchor.defined()) {
      Tensor penalized;
      values.push_back(importance_update_and_penalty(e.fisher, e.path, e.previous, e.param.detach(), grad, e.anchor,
                                                     e.weight, u, settings_.importance, penalized)
                           .reshape({1}));
      e.param.set_grad(penalized);
    } else {
      importance_update(e.fisher, e.path, e.previous, e.param.detach(), grad, u);
    }
  }
  ++updates_;
  if (values.empty()) return Tensor();
  return scale(sum(concat(values)), settings_.importance);
}

Tensor WeightRegularizer::penalty() const {
  if (step_ < 1) return Tensor();
  std::vector<Tensor> terms;
  for (const Entry& e : entries_) {
    if (e.anchor.defined()) terms.push_back(weighted_squared_distance(e.param, e.anchor, e.weight).reshape({1}));
  }
  if (terms.empty()) return Tensor();
  return scale(sum(concat(terms)), settings_.importance);
}

std::vector<std::string> WeightRegularizer::state_kinds() const {
  switch (settings_.kind) {
    case RegularizerKind::ewc: return {"fisher."};
    case RegularizerKind::pi: return {"delta.", "start.", "previous."};
    case RegularizerKind::rw: return {"fisher.", "path.", "previous."};
    case RegularizerKind::none: break;
  }
  return {};
}

TensorMap WeightRegularizer::state() const {
  const RegularizerKind kind = settings_.kind;
  TensorMap out;
  for (const Entry& e : entries_) {
    if (e.fisher.defined()) out.emplace("fisher." + e.name, e.fisher);
    if (e.previous.defined() && updates_ > 0) out.emplace("previous." + e.name, e.previous);
    if (kind == RegularizerKind::pi) {
      out.emplace("delta." + e.name, e.path);
      out.emplace("start." + e.name, e.start);
    } else if (kind == RegularizerKind::rw) {
      out.emplace("path." + e.name, e.path);
    }
    if (kind == RegularizerKind::ewc) continue;
    // The importance the next step penalises with, finished on the host (at saves only).
    Tensor score = host_copy(e.path);
    const Tensor theta = kind == RegularizerKind::pi ? host_copy(e.param.detach()) : Tensor();
    const Tensor start = kind == RegularizerKind::pi ? host_copy(e.start) : Tensor();
    const Tensor old = e.old_score.defined() ? e.old_score.to(score.dtype()) : Tensor();
    with_type("WeightRegularizer::state", score, [&](auto tag) {
      using T = decltype(tag);
      T* s = score.data<T>();
      const T* o = old.defined() ? old.data<T>() : nullptr;
      for (int64_t i = 0; i < score.numel(); ++i) {
        if (kind == RegularizerKind::pi) {
          s[i] = cm::path_integral_score(s[i], theta.data<T>()[i], start.data<T>()[i], o ? o[i] : T(0));
        } else {
          s[i] = cm::riemannian_walk_score(s[i], o != nullptr, o ? o[i] : T(0));
        }
      }
    });
    out.emplace("score." + e.name, score);
  }
  return out;
}

void WeightRegularizer::load_state(const TensorMap& state, const std::string& source, int64_t iteration) {
  const char* name = regularizer_name(settings_.kind);
  const std::vector<std::string> kinds = state_kinds();
  for (const auto& [key, t] : state) {
    const bool known =
        key.rfind("score.", 0) == 0 ||
        std::any_of(kinds.begin(), kinds.end(), [&](const std::string& k) { return key.rfind(k, 0) == 0; });
    check(known, source, ": the checkpoint carries method state '", key, "' that ", name,
          " does not use; it was written by another method");
  }
  autograd::NoGradGuard no_grad;
  for (Entry& e : entries_) {
    auto restore = [&](const std::string& prefix, Tensor& target) {
      if (!target.defined()) return;
      auto it = state.find(prefix + e.name);
      check(it != state.end(), source, ": ", name, " state '", prefix, e.name,
            "' is missing; the checkpoint cannot resume this step");
      check(it->second.shape() == target.shape(), source, ": ", name, " state '", prefix, e.name, "' has shape ",
            it->second.describe(), ", expected ", target.describe());
      target.copy_(it->second);
    };
    restore("fisher.", e.fisher);
    if (settings_.kind == RegularizerKind::pi) {
      restore("delta.", e.path);
      restore("start.", e.start);
    } else {
      restore("path.", e.path);
    }
    if (iteration > 0) restore("previous.", e.previous);
  }
  updates_ = iteration;
}

}  // namespace strata::incremental

// The weight regularisers EWC, PI (path integral, SI) and RW (Riemannian Walk), SPEC-continual.md
// §3.6 (MiB's utils/regularizer.py): one step's importance accumulators and the penalty towards the
// previous step's weights. Per parameter that requires grad (the math: kernels/common/regularizer.h):
//
//   update()   after the method's backward, before the penalty's and SGD's (MiB's train.py order),
//              so g = ∂(CE + KD + …)/∂θ: one fused kernel per parameter (engine/ops/regularizer.h),
//              nothing read back to the host
//     EWC  F ← α·g² + (1−α)·F                         every iteration; F starts at the previous
//                                                    step's F, ones for parameters without one
//     PI   Δ ← Δ + g·(θ_prev − θ); θ_prev ← θ         every iteration (the first only remembers θ)
//     RW   every reg_iterations-th: s ← s + g·(θ_prev − θ)/(½F(θ − θ_prev)² + 1e-8), θ_prev ← θ;
//          then F as EWC, every iteration
//   penalty()  step >= 1: reg_importance · Σ ŵ ⊙ (θ − θ_old)² over the parameters the previous step's
//              model has (the new classifier excluded), with ŵ the previous step's importance,
//              min-max normalised per tensor unless --reg-no-normalize: EWC F_old, PI s_old, RW
//              F_old + s_old (each normalised on its own)
//   state()    the step checkpoint's tensors: what the next step penalises with ("fisher.<p>" for
//              EWC and RW; "score.<p>" for PI and RW, finished on the host: PI max(0, Δ/((θ −
//              θ_start)² + 1e-20)) + s_old, RW ½(max(0, s) + s_old)) and what a resumed step
//              continues from ("delta.<p>", "start.<p>" for PI; "path.<p>" for RW; "previous.<p>" once
//              a point is remembered)
//
// The accumulators live on the step's device (the parameters'); a resumed step restores them
// bit-identically, and the count of updates is the checkpoint's iteration (one update per iteration).
//
// Errors (strata::Error): at step >= 1 a previous checkpoint without the importance this method
// penalises with (naming the checkpoint and the method it was trained with: the references train on
// silently without a penalty), or without a parameter's importance; a resumed state missing an
// accumulator or holding tensors this regulariser does not carry (naming the file and the tensor).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops/regularizer.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace strata::incremental {

enum class RegularizerKind { none, ewc, pi, rw };
const char* regularizer_name(RegularizerKind kind);  // "EWC", "PI", "RW", "none"

struct RegularizerSettings {
  RegularizerKind kind = RegularizerKind::none;
  double importance = 0;    // reg_importance: the penalty's weight
  double alpha = 0.9;       // the Fisher EMA's weight of g² (EWC, RW)
  int64_t iterations = 10;  // RW: iterations between path updates
  bool normalize = true;    // min-max normalise the previous step's importance per tensor
};

// The step t-1 checkpoint's method side, for a step t >= 1.
struct PreviousMethod {
  TensorMap state;     // its method state (Method::state() of that step)
  std::string method;  // the method it was trained with (MethodConfig::describe())
};

// (m − min)/(max − min + 1e-8) per tensor, of a host (CPU) f32 or f64 tensor: a new tensor.
Tensor min_max_normalized(const Tensor& host);

class WeightRegularizer {
 public:
  // `parameters`: the model's (handles), on the step's device, holding the step's starting weights;
  // those that require grad are regularised. At step >= 1:
  // previous_weights, the step t-1 model's state dict, and `previous`, its method state; `source`
  // names that checkpoint in messages. Throws as the file comment says.
  WeightRegularizer(const RegularizerSettings& settings, const nn::NamedTensors& parameters, int step,
                    const TensorMap* previous_weights, const PreviousMethod& previous, const std::string& source);

  void update();
  // reg_importance · Ω, a differentiable scalar on the step's device; undefined at step 0.
  Tensor penalty() const;
  // update() fused with the penalty, as training runs them: the importance from the loss's
  // gradients, then each penalised parameter's gradient replaced by gradient + ∂(penalty)/∂θ (one
  // kernel per parameter, engine/ops/regularizer.h); returns the penalty's value (detached, on the
  // device), undefined at step 0. Same result as update(), penalty() and its backward.
  Tensor update_and_penalize();
  TensorMap state() const;
  // Restores the accumulators of a checkpoint of this step written after `iteration` iterations.
  void load_state(const TensorMap& state, const std::string& source, int64_t iteration);

 private:
  struct Entry {
    std::string name;
    Tensor param;      // the model's parameter (a handle)
    Tensor fisher;     // EWC, RW: the running F
    Tensor path;       // PI: Δ; RW: s
    Tensor previous;   // PI, RW: θ_prev
    Tensor start;      // PI: θ at the step's start
    Tensor old_score;  // PI, RW at step >= 1: the previous step's score, not normalised (host)
    Tensor anchor;     // step >= 1, a parameter of the previous model: θ_old
    Tensor weight;     // with anchor: the penalty's ŵ
  };
  std::vector<std::string> state_kinds() const;  // the resumable accumulators' prefixes
  ImportanceUpdate next_update() const;          // what this iteration's update does

  RegularizerSettings settings_;
  int step_;
  std::vector<Entry> entries_;
  int64_t updates_ = 0;
};

}  // namespace strata::incremental

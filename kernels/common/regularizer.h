// The per-element math of the weight regularisers EWC, PI (path integral, SI) and RW (Riemannian
// Walk), SPEC-continual.md §3.6 (MiB's utils/regularizer.py), shared by the CPU and CUDA kernels and
// by the host code that finishes a step's importance. Per parameter element, with g = ∂L/∂θ of the
// method's loss (the penalty excluded) at the current θ, θ_prev the point remembered at the last
// path update and F the running Fisher estimate:
//
//   Fisher EMA (EWC, RW; every iteration):   F ← α·g² + (1−α)·F
//   PI path (every iteration):               Δ ← Δ + g·(θ_prev − θ)
//   RW path (every reg_iterations-th):       s ← s + g·(θ_prev − θ) / (½·F·(θ − θ_prev)² + 1e-8)
//                                            (F before this iteration's EMA)
//   after a path update:                     θ_prev ← θ
//
// At the end of a step (the importance the next step penalises with):
//   PI   s = max(0, Δ / ((θ − θ_start)² + 1e-20)) + s_old      (s_old: 0 at step 0)
//   RW   s = max(0, s), then ½·(s + s_old) when there is an s_old
// and, at the next step, each tensor min-max normalised: (m − min) / (max − min + 1e-8).
// The penalty of one parameter tensor is Σ w·(θ − θ_old)², with gradient 2·w·(θ − θ_old); in
// training it runs fused with the update (importance_update_and_penalty), the gradient added to g.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

enum class ImportancePath { none, path_integral, riemannian_walk };

// What one iteration's update does to one parameter tensor.
struct ImportanceUpdate {
  double alpha = 0.9;                          // the Fisher EMA's weight of g²
  bool fisher = false;                         // run the Fisher EMA (F must be given)
  ImportancePath path = ImportancePath::none;  // the path term of PI or RW
  bool accumulate = false;                     // θ_prev holds a remembered point: the path term runs
  bool remember = false;                       // θ_prev ← θ after the path term
};

template <class T>
struct ImportanceCoefficients {
  T alpha;
  T one_minus_alpha;
  bool fisher;
  ImportancePath path;
  bool accumulate;
  bool remember;
};

// The coefficients rounded to T once, so both backends run the same T arithmetic.
template <class T>
inline ImportanceCoefficients<T> importance_coefficients(const ImportanceUpdate& u) {
  return {static_cast<T>(u.alpha), static_cast<T>(1.0 - u.alpha), u.fisher, u.path, u.accumulate, u.remember};
}

inline constexpr double kRiemannianWalkEps = 1e-8;
inline constexpr double kPathIntegralEps = 1e-20;
inline constexpr double kNormalizeEps = 1e-8;

// Updates element i of fisher (F), path (Δ or s) and previous (θ_prev) as `k` says; the pointers a
// part does not use may be null.
template <class T>
STRATA_HOST_DEVICE inline void importance_update(T* fisher, T* path, T* previous, const T* param, const T* grad,
                                                 int64_t i, const ImportanceCoefficients<T>& k) {
  const T g = grad[i], p = param[i];
  if (k.accumulate && k.path != ImportancePath::none) {
    const T moved = previous[i] - p;
    if (k.path == ImportancePath::path_integral) {
      path[i] += g * moved;
    } else {
      path[i] += g * moved / (T(0.5) * fisher[i] * moved * moved + static_cast<T>(kRiemannianWalkEps));
    }
  }
  if (k.remember) previous[i] = p;
  if (k.fisher) fisher[i] = k.alpha * g * g + k.one_minus_alpha * fisher[i];
}

// One element of the penalty, w·(θ − θ_old)², and of its gradient times the upstream u.
template <class T>
STRATA_HOST_DEVICE inline T weighted_squared_distance_value(T theta, T anchor, T weight) {
  const T d = theta - anchor;
  return weight * d * d;
}
template <class T>
STRATA_HOST_DEVICE inline T weighted_squared_distance_grad(T upstream, T theta, T anchor, T weight) {
  return T(2) * upstream * weight * (theta - anchor);
}

// The update of element i (importance_update) fused with the penalty's value and gradient there:
// value[i] = w·(θ − θ_old)², grad_out[i] = g + two_importance·w·(θ − θ_old), g being read before
// the update, so the importance sees the loss's gradient alone (MiB's order).
template <class T>
STRATA_HOST_DEVICE inline void importance_update_and_penalty(T* fisher, T* path, T* previous, T* value, T* grad_out,
                                                             const T* param, const T* grad, const T* anchor,
                                                             const T* weight, int64_t i,
                                                             const ImportanceCoefficients<T>& k, T two_importance) {
  const T g = grad[i], theta = param[i];
  importance_update(fisher, path, previous, param, grad, i, k);
  const T d = theta - anchor[i];
  const T wd = weight[i] * d;
  value[i] = wd * d;
  grad_out[i] = g + two_importance * wd;
}

// PI's importance of one element at the end of a step (previous_score: 0 at step 0).
template <class T>
STRATA_HOST_DEVICE inline T path_integral_score(T delta, T theta, T start, T previous_score) {
  const T d = theta - start;
  const T s = delta / (d * d + static_cast<T>(kPathIntegralEps));
  return (s > T(0) ? s : T(0)) + previous_score;
}

// RW's importance of one element at the end of a step.
template <class T>
STRATA_HOST_DEVICE inline T riemannian_walk_score(T score, bool has_previous, T previous_score) {
  const T s = score >= T(0) ? score : T(0);
  return has_previous ? T(0.5) * (s + previous_score) : s;
}

// (m − min) / (max − min + 1e-8), the per-tensor min-max normalisation.
template <class T>
STRATA_HOST_DEVICE inline T min_max_normalized(T m, T min, T max) {
  return (m - min) / (max - min + static_cast<T>(kNormalizeEps));
}

}  // namespace strata::kernels::common

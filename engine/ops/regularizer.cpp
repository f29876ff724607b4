#include "engine/ops/regularizer.h"

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/regularizer.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/regularizer.h"

namespace strata {

namespace {

// `t` (named `role`) has param's shape, dtype and device and is contiguous.
void check_like(const char* op, const Tensor& param, const char* param_role, const Tensor& t, const char* role) {
  check(t.defined(), op, ": ", role, " is needed and missing");
  check_same_shape(op, param, param_role, t, role);
  check_same_dtype(op, param, param_role, t, role);
  check_same_device(op, param, param_role, t, role);
  check(t.is_contiguous(), op, ": ", role, " must be contiguous, got ", t.describe());
}

template <class T>
T* data_or_null(Tensor t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

namespace {

// The checks of importance_update's tensors; whether the path term runs.
bool check_update(const char* op, const Tensor& fisher, const Tensor& path, const Tensor& previous, const Tensor& param,
                  const Tensor& grad, const ImportanceUpdate& update) {
  check_floating(op, "param", param);
  check_like(op, param, "param", grad, "grad");
  check(param.is_contiguous(), op, ": param must be contiguous, got ", param.describe());
  if (update.fisher) check_like(op, param, "param", fisher, "fisher");
  const bool path_term = update.accumulate && update.path != ImportancePath::none;
  if (path_term) check_like(op, param, "param", path, "path");
  if (path_term || update.remember) check_like(op, param, "param", previous, "previous");
  if (path_term && update.path == ImportancePath::riemannian_walk) {
    check_like(op, param, "param", fisher, "fisher (RW's path term reads it)");
  }
  return path_term;
}

}  // namespace

void importance_update(const Tensor& fisher, const Tensor& path, const Tensor& previous, const Tensor& param,
                       const Tensor& grad, const ImportanceUpdate& update) {
  const char* op = "importance_update";
  profiler::Scope profile_scope(op);
  const bool path_term = check_update(op, fisher, path, previous, param, grad, update);
  const int64_t n = param.numel();
  // Reads θ and g, and F, Δ/s and θ_prev where used; writes those back. About 6 operations each.
  const double streams = 2.0 + (update.fisher ? 2.0 : 0.0) + (path_term ? 3.0 : 0.0) + (update.remember ? 1.0 : 0.0);
  profiler::count(6.0 * static_cast<double>(n), streams * static_cast<double>(n) * dtype_size(param.dtype()));
  dispatch(op, param, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    importance_update(update.fisher || path_term ? data_or_null<T>(fisher) : nullptr,
                      path_term ? data_or_null<T>(path) : nullptr,
                      path_term || update.remember ? data_or_null<T>(previous) : nullptr, param.data<T>(),
                      grad.data<T>(), n, update, backend);
  });
}

Tensor importance_update_and_penalty(const Tensor& fisher, const Tensor& path, const Tensor& previous,
                                     const Tensor& param, const Tensor& grad, const Tensor& anchor,
                                     const Tensor& weight, const ImportanceUpdate& update, double importance,
                                     Tensor& penalized_grad) {
  const char* op = "importance_update_and_penalty";
  profiler::Scope profile_scope(op);
  const bool path_term = check_update(op, fisher, path, previous, param, grad, update);
  check_like(op, param, "param", anchor, "anchor");
  check_like(op, param, "param", weight, "weight");
  const int64_t n = param.numel();
  // importance_update's streams, plus the anchor and weight read, the values and new gradient written.
  const double streams = 6.0 + (update.fisher ? 2.0 : 0.0) + (path_term ? 3.0 : 0.0) + (update.remember ? 1.0 : 0.0);
  profiler::count(10.0 * static_cast<double>(n), streams * static_cast<double>(n) * dtype_size(param.dtype()));
  Tensor values = Tensor::empty(param.shape(), param.dtype(), param.device());
  Tensor out = Tensor::empty(param.shape(), param.dtype(), param.device());
  Tensor y = Tensor::empty({}, param.dtype(), param.device());
  dispatch(op, param, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    importance_update_and_penalty(
        update.fisher || path_term ? data_or_null<T>(fisher) : nullptr, path_term ? data_or_null<T>(path) : nullptr,
        path_term || update.remember ? data_or_null<T>(previous) : nullptr, values.data<T>(), out.data<T>(),
        param.data<T>(), grad.data<T>(), anchor.data<T>(), weight.data<T>(), n, update, importance, backend);
    sum_all(y.data<T>(), values.data<T>(), n, 1.0, backend);
  });
  penalized_grad = out;
  return y;
}

Tensor weighted_squared_distance(const Tensor& theta, const Tensor& anchor, const Tensor& weight) {
  const char* op = "weighted_squared_distance";
  profiler::Scope profile_scope(op);
  check_floating(op, "theta", theta);
  check_like(op, theta, "theta", anchor, "anchor");
  check_like(op, theta, "theta", weight, "weight");
  const Tensor tc = theta.contiguous();
  const int64_t n = theta.numel();
  const double element = static_cast<double>(dtype_size(theta.dtype()));
  profiler::count(4.0 * static_cast<double>(n), 4.0 * static_cast<double>(n) * element);
  Tensor values = Tensor::empty(theta.shape(), theta.dtype(), theta.device());
  Tensor y = Tensor::empty({}, theta.dtype(), theta.device());
  dispatch(op, theta, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    weighted_squared_distance(values.data<T>(), tc.data<T>(), anchor.data<T>(), weight.data<T>(), n, backend);
    sum_all(y.data<T>(), values.data<T>(), n, 1.0, backend);
  });
  autograd::record(op, y, {theta},
                   [op, n, t_saved = autograd::save(tc), a_saved = autograd::save(anchor),
                    w_saved = autograd::save(weight)](const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope(op, profiler::Phase::backward);
                     profiler::count(4.0 * static_cast<double>(n),
                                     4.0 * static_cast<double>(n) * dtype_size(t_saved.dtype()));
                     const Tensor gc = g.contiguous();
                     Tensor dtheta = Tensor::empty(t_saved.shape(), t_saved.dtype(), t_saved.device());
                     dispatch(op, t_saved, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       weighted_squared_distance_backward(dtheta.data<T>(), gc.data<T>(), t_saved.data<T>(),
                                                          a_saved.data<T>(), w_saved.data<T>(), n, backend);
                     });
                     return std::vector<Tensor>{dtheta};
                   });
  return y;
}

}  // namespace strata

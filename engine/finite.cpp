#include "engine/finite.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace strata {

namespace {

// NaN exactly when x holds a NaN or an Inf, else 0 (see the header); shape (1), f64, on x's device.
Tensor nonfinite_marker(const Tensor& x) {
  const Tensor values = x.dtype() == DType::f32 || x.dtype() == DType::f64 ? x : x.to(DType::f32);
  return sum(scale(values, 0.0)).reshape({1}).to(DType::f64);
}

// The floating tensors of `tensors` with elements, each checked to be on `device`.
std::vector<const Tensor*> floating_on(const std::vector<Tensor>& tensors, Device device, const char* what) {
  std::vector<const Tensor*> out;
  for (const Tensor& t : tensors) {
    if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) continue;
    check(t.device() == device, what, ": ", t.describe(), " is not on ", device.str());
    out.push_back(&t);
  }
  return out;
}

Tensor sum_of(std::vector<Tensor> scalars, Device device) {
  if (scalars.empty()) return Tensor::zeros({1}, DType::f64, device);
  return sum(concat(scalars)).reshape({1});
}

}  // namespace

Tensor nonfinite_marker(const std::vector<Tensor>& tensors, Device device) {
  autograd::NoGradGuard no_grad;
  autograd::AnomalyModeGuard unchecked(false);  // a probe, not a step of the computation
  std::vector<Tensor> markers;
  for (const Tensor* t : floating_on(tensors, device, "nonfinite_marker")) markers.push_back(nonfinite_marker(*t));
  return sum_of(std::move(markers), device);
}

Tensor squared_norm(const std::vector<Tensor>& tensors, Device device) {
  autograd::NoGradGuard no_grad;
  autograd::AnomalyModeGuard unchecked(false);  // a probe, not a step of the computation
  std::vector<Tensor> sums;
  for (const Tensor* t : floating_on(tensors, device, "squared_norm")) {
    const Tensor values = t->dtype() == DType::f32 || t->dtype() == DType::f64 ? *t : t->to(DType::f32);
    sums.push_back(sum(square(values)).reshape({1}).to(DType::f64));
  }
  return sum_of(std::move(sums), device);
}

bool all_finite(const Tensor& x) {
  autograd::NoGradGuard no_grad;
  autograd::AnomalyModeGuard unchecked(false);  // a probe, not a step of the computation
  if (!x.defined() || !is_floating(x.dtype()) || x.numel() == 0) return true;
  return !std::isnan(nonfinite_marker(x).to_vector<double>()[0]);
}

std::string first_nonfinite(const TensorMap& tensors) {
  autograd::NoGradGuard no_grad;
  autograd::AnomalyModeGuard unchecked(false);
  struct DeviceMarkers {
    Device device;
    std::vector<const std::string*> keys;
    std::vector<Tensor> markers;
  };
  std::vector<DeviceMarkers> devices;
  for (const auto& [key, tensor] : tensors) {
    if (!is_floating(tensor.dtype()) || tensor.numel() == 0) continue;
    const Device device = tensor.device();  // a lambda may not capture a structured binding before clang 16
    auto group =
        std::find_if(devices.begin(), devices.end(), [&](const DeviceMarkers& d) { return d.device == device; });
    if (group == devices.end()) group = devices.insert(devices.end(), DeviceMarkers{device, {}, {}});
    group->keys.push_back(&key);
    group->markers.push_back(nonfinite_marker(tensor));
  }
  const std::string* first = nullptr;
  for (const DeviceMarkers& group : devices) {
    const std::vector<double> markers = concat(group.markers).to_vector<double>();
    for (size_t i = 0; i < markers.size(); ++i) {
      if (!std::isnan(markers[i])) continue;
      if (first == nullptr || *group.keys[i] < *first) first = group.keys[i];
      break;
    }
  }
  return first != nullptr ? *first : std::string();
}

}  // namespace strata

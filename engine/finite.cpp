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

}  // namespace

std::string first_nonfinite(const TensorMap& tensors) {
  autograd::NoGradGuard no_grad;
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

// normalize_image: argument checks and one kernel call for both backends (kernels/cpu/normalize.cpp,
// kernels/cuda/normalize.cu). The op records no autograd node: its input is u8 data, which never
// requires a gradient.
#include "engine/ops/normalize.h"

#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/normalize.h"
#include "kernels/cuda/normalize.h"

namespace strata {

Tensor normalize_image(const Tensor& images_u8, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  const char* op = "normalize_image";
  profiler::Scope profile_scope(op);
  check_defined(op, "images", images_u8);
  check_dtype(op, "images", images_u8, DType::u8);
  check_dim(op, "images", images_u8, 4, "(N,H,W,3)");
  check(images_u8.size(3) == 3, op, ": images must be (N,H,W,3) RGB, got ", images_u8.describe());
  for (float s : std) check(s != 0.0f, op, ": std must be nonzero, got (", std[0], ", ", std[1], ", ", std[2], ")");
  Tensor x = images_u8.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  // u8 in, f32 out: the kernel fixes its types, so the body takes only the backend.
  on_backend(op, x, [&](const auto& backend) {
    normalize_image(y.data<float>(), x.data<uint8_t>(), x.numel() / 3, mean.data(), std.data(), backend);
  });
  // (x / 255 - mean) / std as one multiply-add per element; u8 in, f32 out.
  profiler::count(2 * static_cast<double>(x.numel()), static_cast<double>(x.numel()) * (1 + sizeof(float)));
  return y;
}

}  // namespace strata

// Local POD distance: argument checks, the window geometry, one kernel call per pass for both
// backends (kernels/cpu/pod.h, kernels/cuda/pod.h), and the autograd node (student only).
#include "engine/ops/pod.h"

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/common/pod.h"
#include "kernels/cpu/pod.h"
#include "kernels/cuda/pod.h"

namespace strata {

namespace {

using kernels::common::kMaxPodScales;
using kernels::common::PodGeometry;

constexpr const char* kOp = "local_pod_distance";

PodGeometry pod_geometry(const Tensor& x, const LocalPodOptions& options) {
  const int64_t height = x.size(1), width = x.size(2);
  const auto count = static_cast<int64_t>(options.scales.size());
  check(count >= 1 && count <= kMaxPodScales, kOp, ": expected 1 to ", kMaxPodScales, " scales, got ", count);
  if (options.windows == PodWindows::square) {
    check(height == width, kOp, ": maps are ", x.describe(), " (N,H,W,C) with H = ", height, " != W = ", width,
          "; PLOP's local POD cuts both axes into windows of W // s (it assumes square maps, and its result on ",
          "others is not defined): use square maps or PodWindows::per_axis (windows of H // s rows and W // s ",
          "columns)");
  }
  PodGeometry g;
  g.batch = x.size(0);
  g.height = height;
  g.width = width;
  g.channels = x.size(3);
  g.scales = static_cast<int>(count);
  for (int t = 0; t < g.scales; ++t) {
    const int64_t s = options.scales[static_cast<size_t>(t)];
    check(s >= 1, kOp, ": scale ", s, " at index ", t, " is not >= 1");
    check(s <= height && s <= width, kOp, ": scale ", s, " needs maps of at least ", s, "x", s,
          " pixels (windows of at least one pixel), got ", x.describe());
    g.scale[t] = s;
    g.window_width[t] = width / s;
    g.window_height[t] = options.windows == PodWindows::square ? width / s : height / s;
  }
  kernels::common::finish_pod_geometry(g);
  return g;
}

}  // namespace

const char* to_string(PodWindows windows) { return windows == PodWindows::square ? "square" : "per_axis"; }

Tensor local_pod_distance(const Tensor& teacher, const Tensor& student, const LocalPodOptions& options) {
  profiler::Scope profile_scope(kOp);
  check_dim(kOp, "teacher", teacher, 4, "(N,H,W,C)");
  check_dim(kOp, "student", student, 4, "(N,H,W,C)");
  check_floating(kOp, "teacher", teacher);
  check_floating(kOp, "student", student);
  check_same_dtype(kOp, teacher, "teacher", student, "student");
  check_same_device(kOp, teacher, "teacher", student, "student");
  check_same_shape(kOp, teacher, "teacher", student, "student");
  check(student.numel() > 0, kOp, ": empty maps ", student.describe());
  const PodGeometry g = pod_geometry(student, options);
  Tensor a = teacher.contiguous(), b = student.contiguous();
  Tensor distance = Tensor::empty({g.batch}, b.dtype(), b.device());
  Tensor embedding = Tensor::empty({g.batch, g.embedding}, b.dtype(), b.device());
  const double element = static_cast<double>(dtype_size(b.dtype()));
  // Per element of the maps: D (3 operations) and two additions per scale; both maps read once,
  // the embedding written once.
  profiler::count((3.0 + 2.0 * g.scales) * static_cast<double>(b.numel()),
                  (2.0 * static_cast<double>(b.numel()) + static_cast<double>(embedding.numel())) * element);
  dispatch(kOp, b, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    local_pod(distance.data<T>(), embedding.data<T>(), a.data<T>(), b.data<T>(), g, backend);
  });
  autograd::record(kOp, distance, {student},
                   [g, b_saved = autograd::save(b), e_saved = autograd::save(embedding),
                    d_saved = autograd::save(distance)](const Tensor& grad, const std::vector<bool>&) {
                     profiler::Scope backward_scope(kOp, profiler::Phase::backward);
                     const double bytes = static_cast<double>(dtype_size(b_saved.dtype()));
                     profiler::count(
                         (4.0 + 4.0 * g.scales) * static_cast<double>(b_saved.numel()),
                         (2.0 * static_cast<double>(b_saved.numel()) + static_cast<double>(e_saved.numel())) * bytes);
                     Tensor gc = grad.contiguous();
                     Tensor db = Tensor::empty(b_saved.shape(), b_saved.dtype(), b_saved.device());
                     dispatch(kOp, b_saved, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       local_pod_backward(db.data<T>(), gc.data<T>(), d_saved.data<T>(), e_saved.data<T>(),
                                          b_saved.data<T>(), g, backend);
                     });
                     return std::vector<Tensor>{db};
                   });
  return distance;
}

}  // namespace strata

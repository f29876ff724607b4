#include "engine/ops/channels.h"

#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/channels.h"
#include "kernels/cuda/channels.h"

namespace strata {

namespace {

int64_t rows_of(const Shape& shape) {
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  return rows;
}

// A channel copy: no arithmetic, each element of `out` read from its source and written once.
void count_copy(const Tensor& out) {
  profiler::count(0, 2 * static_cast<double>(out.nbytes()));
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs) {
  const char* op = "concat";
  profiler::Scope profile_scope(op);
  check(!xs.empty(), op, ": expected at least one tensor, got an empty list");
  std::vector<std::string> roles;
  for (size_t i = 0; i < xs.size(); ++i) roles.push_back(cat("xs[", i, "]"));
  const Tensor& first = xs[0];
  check_floating(op, roles[0].c_str(), first);
  check(first.dim() >= 1, op, ": expected xs[0] with a channel dimension, got ", first.describe());
  std::vector<int64_t> channels;
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    const char* role = roles[i].c_str();
    check_floating(op, role, x);
    check_same_dtype(op, first, "xs[0]", x, role);
    check_same_device(op, first, "xs[0]", x, role);
    bool same_leading = x.dim() == first.dim();
    for (int64_t d = 0; same_leading && d + 1 < x.dim(); ++d) same_leading = x.size(d) == first.size(d);
    check(same_leading, op, ": ", role, " is ", x.describe(), " but xs[0] is ", first.describe(),
          " (same rank and all dimensions but the last must match)");
    channels.push_back(x.size(-1));
    total += x.size(-1);
  }
  Shape out_shape = first.shape();
  out_shape.back() = total;
  int64_t rows = rows_of(out_shape);
  std::vector<Tensor> contiguous;
  for (const Tensor& x : xs) contiguous.push_back(x.contiguous());
  Tensor y = Tensor::empty(out_shape, first.dtype(), first.device());
  const int64_t count = static_cast<int64_t>(xs.size());
  dispatch(op, first, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    std::vector<const T*> pointers;
    for (const Tensor& x : contiguous) pointers.push_back(x.data<T>());
    concat_channels(y.data<T>(), pointers.data(), channels.data(), count, rows, backend);
  });
  count_copy(y);
  autograd::record(op, y, xs, [channels, rows, total](const Tensor& grad, const std::vector<bool>& needs) {
    profiler::Scope backward_scope("concat", profiler::Phase::backward);
    Tensor gc = grad.contiguous();
    std::vector<Tensor> grads(channels.size());
    int64_t begin = 0;
    for (size_t i = 0; i < channels.size(); ++i) {
      int64_t end = begin + channels[i];
      if (needs[i]) {
        Shape shape = gc.shape();
        shape.back() = channels[i];
        grads[i] = Tensor::empty(shape, gc.dtype(), gc.device());
        dispatch("concat backward", gc, [&](auto tag, const auto& backend) {
          using T = decltype(tag);
          slice_channels(grads[i].data<T>(), gc.data<T>(), rows, total, begin, end, backend);
        });
        count_copy(grads[i]);
      }
      begin = end;
    }
    return grads;
  });
  return y;
}

Tensor slice(const Tensor& x, int64_t begin, int64_t end) {
  const char* op = "slice";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x with a channel dimension, got ", x.describe());
  int64_t channels = x.size(-1);
  check(0 <= begin && begin <= end && end <= channels, op, ": channel range [", begin, ", ", end,
        ") must satisfy 0 <= begin <= end <= C for x ", x.describe());
  Shape out_shape = x.shape();
  out_shape.back() = end - begin;
  int64_t rows = rows_of(out_shape);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    slice_channels(y.data<T>(), xc.data<T>(), rows, channels, begin, end, backend);
  });
  count_copy(y);
  autograd::record(op, y, {x},
                   [shape = x.shape(), rows, channels, begin, end](const Tensor& grad, const std::vector<bool>&) {
                     profiler::Scope backward_scope("slice", profiler::Phase::backward);
                     Tensor gc = grad.contiguous();
                     Tensor dx = Tensor::empty(shape, gc.dtype(), gc.device());
                     dispatch("slice backward", gc, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       slice_channels_backward(dx.data<T>(), gc.data<T>(), rows, channels, begin, end, backend);
                     });
                     count_copy(dx);
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace strata

#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/profiler.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cuda/dropout.h"

namespace strata {

Tensor dropout(const Tensor& x, double p, bool training, Generator& generator) {
  const char* op = "dropout";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(p >= 0.0 && p < 1.0, op, ": p must be in [0, 1) (p == 1 would scale kept elements by 1/0), got ", p);
  if (!training || p == 0.0) return x;

  Tensor xc = x.contiguous();
  const int64_t n = x.numel();
  const uint64_t seed = generator.seed();
  const uint64_t first = generator.advance(static_cast<uint64_t>(n));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    dropout(y.data<T>(), xc.data<T>(), seed, first, p, n, backend);
  });
  // The backward keeps (seed, first) and regenerates the mask rather than saving it: zero bytes
  // held between forward and backward (a u8 mask would be a quarter of an f32 activation), at the
  // cost of one Philox block per 4 elements, cheap next to the memory traffic of the pass and free
  // on a GPU. Philox is a pure function of (seed, counter), so the mask is exactly the forward's.
  autograd::record(op, y, {x}, [seed, first, p](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope("dropout", profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    dispatch("dropout backward", gc, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      dropout_backward(dx.data<T>(), gc.data<T>(), seed, first, p, gc.numel(), backend);
    });
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor dropout2d(const Tensor& x, double p, bool training, Generator& generator) {
  check_floating("dropout2d", "x", x);
  check(x.dim() == 4, "dropout2d: expected (N,H,W,C), got ", x.describe());
  if (!training || p == 0.0) return dropout(x, p, training, generator);  // validates p, returns x
  const Tensor keep = dropout(Tensor::ones({x.size(0), 1, 1, x.size(3)}, x.dtype(), x.device()), p, true, generator);
  return mul(x, keep);
}

}  // namespace strata

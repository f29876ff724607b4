// Inverted dropout (Srivastava et al., JMLR 2014; torch.nn.functional.dropout's scaling):
//   y_i = m_i x_i / (1 - p),  m_i = [u_i >= p],  u_i = to_unit_float(philox word(seed, first + i, dropout stream))
// The backward is the same map applied to dy (dy/dx is the diagonal m / (1 - p)).
// Each chunk of elements first draws its Philox words into a small buffer (one block per 4
// elements), then applies the mask in a branch-free loop: the keep decisions are random, so a
// branch per element would be mispredicted half the time at p = 0.5 (measured ~10x slower).
#include "kernels/cpu/dropout.h"

#include <bit>
#include <type_traits>

#include "kernels/common/dropout.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

constexpr int64_t kWordBuffer = 256;  // 64 Philox blocks: 1 KiB on the stack

// words[k] = philox::word(seed, start + k, dropout_mask::kStream) for k < count, drawing each
// block once.
void draw_words(uint32_t* words, uint64_t seed, uint64_t start, int64_t count) {
  uint64_t block = start / 4, lane = start % 4;
  int64_t k = 0;
  while (k < count) {
    philox::Block b = philox::draw(seed, block++, dropout_mask::kStream);
    for (; lane < 4 && k < count; ++lane) words[k++] = b.v[lane];
    lane = 0;
  }
}

// v where keep, else +0, by masking the bits: a select GCC vectorises (with its default
// -ftrapping-math it will not if-convert `keep ? v * scale : 0`).
template <class T>
inline T keep_or_zero(T v, bool keep) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  return std::bit_cast<T>(static_cast<Bits>(std::bit_cast<Bits>(v) & (Bits(0) - static_cast<Bits>(keep))));
}

}  // namespace

template <class T>
void dropout(T* y, const T* x, uint64_t seed, uint64_t first, double p, int64_t n, const Backend&) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const uint32_t threshold = dropout_mask::keep_threshold(p);
  parallel_for(0, n, kElementwiseGrain, [&, scale, threshold, seed, first](int64_t lo, int64_t hi) {
    uint32_t words[kWordBuffer];
    for (int64_t begin = lo; begin < hi; begin += kWordBuffer) {
      const int64_t count = hi - begin < kWordBuffer ? hi - begin : kWordBuffer;
      draw_words(words, seed, first + static_cast<uint64_t>(begin), count);
      const T* xs = x + begin;
      T* ys = y + begin;
      for (int64_t k = 0; k < count; ++k) {
        ys[k] = keep_or_zero(xs[k] * scale, dropout_mask::kept_bits(words[k], threshold));
      }
    }
  });
}

template <class T>
void dropout_backward(T* dx, const T* dy, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend) {
  dropout(dx, dy, seed, first, p, n, backend);
}

#define STRATA_INSTANTIATE(T)                                                                  \
  template void dropout<T>(T*, const T*, uint64_t, uint64_t, double, int64_t, const Backend&); \
  template void dropout_backward<T>(T*, const T*, uint64_t, uint64_t, double, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu

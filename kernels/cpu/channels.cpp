// Concatenation along the last (channel) dimension, as torch.cat(dim=1) on NCHW, and its inverse,
// the channel slice x[:, begin:end]. Pure copies: row r of the output is the inputs' rows r laid
// side by side. Rows are split over threads; each output element has exactly one writer.
#include "kernels/cpu/channels.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void concat_channels(T* y, const T* const* xs, const int64_t* channels, int64_t count, int64_t rows, const Backend&) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += channels[i];
  parallel_for(0, rows, rows_per_chunk(total), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      T* yr = y + r * total;
      for (int64_t i = 0; i < count; ++i) {
        const T* xr = xs[i] + r * channels[i];
        yr = std::copy(xr, xr + channels[i], yr);
      }
    }
  });
}

template <class T>
void slice_channels(T* y, const T* x, int64_t rows, int64_t channels, int64_t begin, int64_t end, const Backend&) {
  const int64_t width = end - begin;
  parallel_for(0, rows, rows_per_chunk(width), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels + begin;
      std::copy(xr, xr + width, y + r * width);
    }
  });
}

template <class T>
void slice_channels_backward(T* dx, const T* dy, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                             const Backend&) {
  const int64_t width = end - begin;
  parallel_for(0, rows, rows_per_chunk(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      T* dxr = dx + r * channels;
      const T* dyr = dy + r * width;
      std::fill(dxr, dxr + begin, T(0));
      std::copy(dyr, dyr + width, dxr + begin);
      std::fill(dxr + end, dxr + channels, T(0));
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                              \
  template void concat_channels<T>(T*, const T* const*, const int64_t*, int64_t, int64_t, const Backend&); \
  template void slice_channels<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, const Backend&);       \
  template void slice_channels_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu

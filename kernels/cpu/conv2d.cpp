// Convolution as im2col + GEMM on NHWC data (Chellapilla et al. 2006; Caffe's formulation with
// channels innermost). With NHWC activations and OHWI weights:
//   - a pointwise (1x1, stride 1, no padding) convolution is one GEMM over pixels, no copy;
//   - im2col writes, for every output pixel, its receptive field as one row in (r, s, c) order,
//     which is exactly a row of the OHWI weight matrix, and for dilation 1 the S taps of one
//     kernel row are S*C contiguous values of the input, so a row is R memcpys;
//   - the data gradient's col2im is written as a gather over input pixels (each sums the taps that
//     read it), so it is parallel over pixels and deterministic.
// Images are processed in chunks so the im2col buffer, taken from the backend's scratch, stays
// bounded (kChunkBudget elements). The bias is added after the product (kernels/cpu/elementwise.h's
// add_channel, as the CUDA kernels add it). The inference convolution's epilogue (bias, residual,
// activation; kernels/common/conv2d.h) runs on each chunk's rows right after their GEMM, while they
// are still in cache.
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

constexpr int64_t kChunkBudget = int64_t{1} << 22;  // im2col elements per chunk (16 MiB in f32)

int64_t patch_size(const Conv2dShape& s) { return s.R * s.S * s.C; }

int64_t images_per_chunk(const Conv2dShape& s) {
  int64_t per_image = s.P * s.Q * patch_size(s);
  if (per_image == 0) return std::max<int64_t>(s.N, 1);
  return std::clamp<int64_t>(kChunkBudget / per_image, 1, std::max<int64_t>(s.N, 1));
}

// cols[(n - n0) * P * Q + p * Q + q, (r * S + sx) * C + c] = x[n, h, w, c] (0 outside the image)
template <class T>
void im2col(T* cols, const T* x, const Conv2dShape& s, int64_t n0, int64_t n1) {
  const int64_t C = s.C, patch = patch_size(s), rows = (n1 - n0) * s.P * s.Q;
  parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t n = n0 + row / (s.P * s.Q);
      int64_t p = (row / s.Q) % s.P, q = row % s.Q;
      T* out = cols + row * patch;
      int64_t w0 = q * s.stride_w - s.pad_w;
      bool row_inside = s.dilation_w == 1 && w0 >= 0 && w0 + s.S <= s.W;
      for (int64_t r = 0; r < s.R; ++r) {
        int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
        T* seg = out + r * s.S * C;
        if (h < 0 || h >= s.H) {
          std::memset(seg, 0, sizeof(T) * static_cast<size_t>(s.S * C));
          continue;
        }
        const T* xrow = x + ((n * s.H + h) * s.W) * C;
        if (row_inside) {
          std::memcpy(seg, xrow + w0 * C, sizeof(T) * static_cast<size_t>(s.S * C));
          continue;
        }
        for (int64_t sx = 0; sx < s.S; ++sx) {
          int64_t w = w0 + sx * s.dilation_w;
          if (w < 0 || w >= s.W) {
            std::memset(seg + sx * C, 0, sizeof(T) * static_cast<size_t>(C));
          } else {
            std::memcpy(seg + sx * C, xrow + w * C, sizeof(T) * static_cast<size_t>(C));
          }
        }
      }
    }
  });
}

// dx[n, h, w, c] = sum over taps (r, sx) whose output pixel (p, q) reads (h, w) of
//                  dcols[row(n, p, q), (r * S + sx) * C + c]   for n in [n0, n1)
template <class T>
void col2im_gather(T* dx, const T* dcols, const Conv2dShape& s, int64_t n0, int64_t n1) {
  const int64_t C = s.C, patch = patch_size(s);
  parallel_for(0, (n1 - n0) * s.H, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t nh = lo; nh < hi; ++nh) {
      int64_t n = n0 + nh / s.H, h = nh % s.H;
      for (int64_t w = 0; w < s.W; ++w) {
        T* out = dx + ((n * s.H + h) * s.W + w) * C;
        std::fill(out, out + C, T(0));
        for (int64_t r = 0; r < s.R; ++r) {
          int64_t ph = h + s.pad_h - r * s.dilation_h;
          if (ph < 0 || ph % s.stride_h != 0) continue;
          int64_t p = ph / s.stride_h;
          if (p >= s.P) continue;
          for (int64_t sx = 0; sx < s.S; ++sx) {
            int64_t qw = w + s.pad_w - sx * s.dilation_w;
            if (qw < 0 || qw % s.stride_w != 0) continue;
            int64_t q = qw / s.stride_w;
            if (q >= s.Q) continue;
            const T* in = dcols + (((n - n0) * s.P + p) * s.Q + q) * patch + (r * s.S + sx) * C;
            for (int64_t c = 0; c < C; ++c) out[c] += in[c];
          }
        }
      }
    }
  });
}

// body(cols, n0, n1, rows) for each chunk of images [n0, n1), whose rows = (n1 - n0) P Q output pixels
// fill `cols`, the im2col buffer of one chunk (from the backend's scratch).
template <class T, class Body>
void for_each_chunk(const Conv2dShape& s, const Backend& backend, Body&& body) {
  const int64_t chunk = images_per_chunk(s);
  T* cols = backend.scratch->array<T>(chunk * s.P * s.Q * patch_size(s));
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t n1 = std::min(s.N, n0 + chunk);
    body(cols, n0, n1, (n1 - n0) * s.P * s.Q);
  }
}

// The epilogue of kernels/common/conv2d.h on output rows [row0, row1) of y (N P Q rows of K).
template <class T>
void apply_epilogue(T* y, const ConvEpilogue<T>& e, const Conv2dShape& s, int64_t row0, int64_t row1) {
  const int64_t K = s.K, pixels = s.P * s.Q;
  const int64_t grain = K > 0 ? kElementwiseGrain / K + 1 : 1;
  parallel_for(row0, row1, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      T* yr = y + row * K;
      const T* rr = e.residual ? e.residual + common::conv_epilogue_residual_row(e, row, pixels) * K : nullptr;
      // One loop per combination of terms, so each vectorises without a test per element.
      if (e.bias && rr) {
        for (int64_t k = 0; k < K; ++k) yr[k] = common::conv_epilogue_activation(yr[k] + e.bias[k] + rr[k], e.slope);
      } else if (e.bias) {
        for (int64_t k = 0; k < K; ++k) yr[k] = common::conv_epilogue_activation(yr[k] + e.bias[k], e.slope);
      } else if (rr) {
        for (int64_t k = 0; k < K; ++k) yr[k] = common::conv_epilogue_activation(yr[k] + rr[k], e.slope);
      } else {
        for (int64_t k = 0; k < K; ++k) yr[k] = common::conv_epilogue_activation(yr[k], e.slope);
      }
    }
  });
}

}  // namespace

template <class T>
void conv2d_forward_epilogue(T* y, const T* x, const T* w, const ConvEpilogue<T>& epilogue, const Conv2dShape& s,
                             const Backend& backend) {
  const int64_t K = s.K, patch = patch_size(s);
  if (s.is_pointwise()) {
    gemm(false, true, s.N * s.P * s.Q, K, s.C, T(1), x, s.C, w, s.C, T(0), y, K, backend);
    apply_epilogue(y, epilogue, s, 0, s.N * s.P * s.Q);
    return;
  }
  for_each_chunk<T>(s, backend, [&](T* cols, int64_t n0, int64_t n1, int64_t rows) {
    im2col(cols, x, s, n0, n1);
    gemm(false, true, rows, K, patch, T(1), cols, patch, w, patch, T(0), y + n0 * s.P * s.Q * K, K, backend);
    apply_epilogue(y, epilogue, s, n0 * s.P * s.Q, n1 * s.P * s.Q);
  });
}

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s, const Backend& backend) {
  const int64_t K = s.K, patch = patch_size(s);
  if (s.is_pointwise()) {
    gemm(false, true, s.N * s.P * s.Q, K, s.C, T(1), x, s.C, w, s.C, T(0), y, K, backend);
  } else {
    for_each_chunk<T>(s, backend, [&](T* cols, int64_t n0, int64_t n1, int64_t rows) {
      im2col(cols, x, s, n0, n1);
      gemm(false, true, rows, K, patch, T(1), cols, patch, w, patch, T(0), y + n0 * s.P * s.Q * K, K, backend);
    });
  }
  if (bias) add_channel(y, y, bias, s.N * s.P * s.Q, K, backend);
}

template <class T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s, const Backend& backend) {
  const int64_t K = s.K, patch = patch_size(s);
  if (s.is_pointwise()) {
    gemm(false, false, s.N * s.H * s.W, s.C, K, T(1), dy, K, w, s.C, T(0), dx, s.C, backend);
    return;
  }
  for_each_chunk<T>(s, backend, [&](T* cols, int64_t n0, int64_t n1, int64_t rows) {
    gemm(false, false, rows, patch, K, T(1), dy + n0 * s.P * s.Q * K, K, w, patch, T(0), cols, patch, backend);
    col2im_gather(dx, cols, s, n0, n1);
  });
}

template <class T>
void conv2d_backward_filter(T* dw, const T* dy, const T* x, const Conv2dShape& s, const Backend& backend) {
  const int64_t K = s.K, patch = patch_size(s);
  if (s.N == 0) {
    std::fill(dw, dw + K * patch, T(0));
    return;
  }
  if (s.is_pointwise()) {
    gemm(true, false, K, s.C, s.N * s.H * s.W, T(1), dy, K, x, s.C, T(0), dw, s.C, backend);
    return;
  }
  for_each_chunk<T>(s, backend, [&](T* cols, int64_t n0, int64_t n1, int64_t rows) {
    im2col(cols, x, s, n0, n1);
    gemm(true, false, K, patch, rows, T(1), dy + n0 * s.P * s.Q * K, K, cols, patch, n0 == 0 ? T(0) : T(1), dw, patch,
         backend);
  });
}

#define STRATA_INSTANTIATE(T)                                                                                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&, const Backend&);       \
  template void conv2d_forward_epilogue<T>(T*, const T*, const T*, const ConvEpilogue<T>&, const Conv2dShape&, \
                                           const Backend&);                                                    \
  template void conv2d_backward_data<T>(T*, const T*, const T*, const Conv2dShape&, const Backend&);           \
  template void conv2d_backward_filter<T>(T*, const T*, const T*, const Conv2dShape&, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu

// Local POD (PLOP, Douillard et al., CVPR 2021; SPEC-continual.md §3.7 (b)), the math both backends
// share. N batch, H height, W width, C channels; maps are NHWC.
//
// For a map x the local POD embedding Φ(x) takes, for every scale s, the s×s windows of kh×kw
// pixels (window (i, j) covers rows [i·kh, (i+1)·kh) and columns [j·kw, (j+1)·kw)) and appends,
// per window, its width-mean profile (one value per row and channel: the mean over the window's
// columns) and its height-mean profile (one value per column and channel: the mean over its rows).
// Pixels past s·kh rows or s·kw columns belong to no window of that scale (PLOP slices
// x[i·k:(i+1)·k], so a tail of W mod s columns is left out). The distance between a teacher map a and
// a student map b is d = ‖Φ(a²) − Φ(b²)‖₂ per sample; as Φ is linear, Φ(a²) − Φ(b²) = Φ(D) with
// D = a² − b² = (a − b)(a + b), which the kernels form in double from the inputs (no cancellation
// of two separately rounded squares).
//
// The difference embedding of one sample, laid out as the kernels store it (E values):
//   row profiles of scale t:    e[row_offset[t] + (r·s + j)·C + c]  r < s·kh, j < s
//                               = (1/kw) Σ_{q in window column j} D[r, q, c]
//   column profiles of scale t: e[col_offset[t] + (i·s·kw + q)·C + c]  i < s, q < s·kw
//                               = (1/kh) Σ_{r in window row i} D[r, q, c]
// The order differs from PLOP's concatenation; the norm does not depend on it.
//
// Gradient (the teacher gets none): ∂d/∂b[r, q, c] = −2 b[r, q, c] / d · Σ_t [e_row/kw + e_col/kh]
// over the scales whose windows hold (r, q); 0 when d = 0, as PyTorch's norm backward.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

inline constexpr int kMaxPodScales = 8;

struct PodGeometry {
  int64_t batch = 0, height = 0, width = 0, channels = 0;
  int scales = 0;
  int64_t scale[kMaxPodScales] = {};          // s
  int64_t window_height[kMaxPodScales] = {};  // kh
  int64_t window_width[kMaxPodScales] = {};   // kw
  int64_t row_offset[kMaxPodScales] = {};     // within a sample's embedding
  int64_t col_offset[kMaxPodScales] = {};
  int64_t row_values = 0;  // Σ_t s·kh·s·C: the row profiles of every scale come first
  int64_t embedding = 0;   // E: values per sample

  STRATA_HOST_DEVICE int64_t pixels() const { return height * width; }
};

// kh and kw per scale set by the caller; fills the offsets and sizes.
inline void finish_pod_geometry(PodGeometry& g) {
  int64_t offset = 0;
  for (int t = 0; t < g.scales; ++t) {
    g.row_offset[t] = offset;
    offset += g.scale[t] * g.window_height[t] * g.scale[t] * g.channels;
  }
  g.row_values = offset;
  for (int t = 0; t < g.scales; ++t) {
    g.col_offset[t] = offset;
    offset += g.scale[t] * g.scale[t] * g.window_width[t] * g.channels;
  }
  g.embedding = offset;
}

// Whether pixel (r, q) lies in a window of scale t; if so, the offsets of channel 0 of its
// row-profile and column-profile values in a sample's embedding.
STRATA_HOST_DEVICE inline bool pod_pixel_offsets(const PodGeometry& g, int t, int64_t r, int64_t q, int64_t& row,
                                                 int64_t& col) {
  const int64_t s = g.scale[t], kh = g.window_height[t], kw = g.window_width[t];
  if (r >= s * kh || q >= s * kw) return false;
  row = g.row_offset[t] + (r * s + (q / kw)) * g.channels;
  col = g.col_offset[t] + ((r / kh) * s * kw + q) * g.channels;
  return true;
}

// One scale's term of the derivative of ½‖e‖² with respect to D at an element: e_row/kw + e_col/kh,
// the weights being 1/kw and 1/kh. Summed over the scales in increasing order by both backends.
template <class T>
STRATA_HOST_DEVICE inline double pod_profile_term(const T* e, int64_t row, int64_t col, int64_t c, double row_weight,
                                                  double col_weight) {
  return static_cast<double>(e[row + c]) * row_weight + static_cast<double>(e[col + c]) * col_weight;
}

STRATA_HOST_DEVICE inline double pod_row_weight(const PodGeometry& g, int t) {
  return 1.0 / static_cast<double>(g.window_width[t]);
}
STRATA_HOST_DEVICE inline double pod_col_weight(const PodGeometry& g, int t) {
  return 1.0 / static_cast<double>(g.window_height[t]);
}

// The student's gradient is scale · b · (profile sum) with one scale per sample: −2 · upstream / d,
// or 0 when d = 0 (PyTorch's norm backward).
STRATA_HOST_DEVICE inline double local_pod_gradient_scale(double upstream, double distance) {
  return distance == 0.0 ? 0.0 : -2.0 * upstream / distance;
}

STRATA_HOST_DEVICE inline double local_pod_gradient(double scale, double student, double profile_sum) {
  return scale * student * profile_sum;
}

}  // namespace strata::kernels::common

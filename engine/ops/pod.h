// Local POD distance (PLOP, Douillard et al., CVPR 2021, "Local POD"; SPEC-continual.md §3.7 (b)),
// differentiable with respect to the student, f32/f64 on CPU and CUDA.
//
//   local_pod_distance(teacher, student, options)   teacher a, student b: (N,H,W,C) -> d: (N)
//   d_n = ‖Φ(a_n²) − Φ(b_n²)‖₂
// Φ is PLOP's local POD embedding (its train.py `_local_pod`, no normalisation): for every scale s
// of options.scales ({1, 2, 4} in PLOP) the map is cut into s×s windows of kh×kw pixels, window (i, j)
// covering rows [i·kh, (i+1)·kh) and columns [j·kw, (j+1)·kw); each window contributes its
// width-mean profile (per row and channel, the mean over the window's kw columns: C·kh values) and its
// height-mean profile (per column and channel, the mean over its kh rows: C·kw values). Rows and
// columns past s·kh and s·kw (the W mod s tail: W = 33, s = 4 gives k = 8 and leaves column and row
// 32 out) are in no window of that scale, as PLOP's slicing x[i·k:(i+1)·k] leaves them; a pixel
// outside every scale's windows gets a zero gradient.
//
// Window sizes (options.windows):
//   square    (default) kh = kw = W // s, PLOP's definition, which uses the width for both axes and
//             so assumes H = W. Its behaviour on other maps is not a design: rows past W are never
//             read when H > W, and with W > H windows past the last row are empty and their means
//             NaN. A map with H != W is therefore an error naming its shape.
//   per_axis  kh = H // s, kw = W // s: the same definition with each axis cut by its own size
//             (identical to square when H = W), for non-square maps such as crops of another aspect.
//
// The mean over the batch, the layer factor and the schedule factor are the caller's
// (incremental/losses.h, local_pod). Only the student gets a gradient: the teacher is a constant (as
// in PLOP, whose teacher runs under no_grad), whether or not it requires grad. The gradient is 0
// for a sample whose distance is 0 (PyTorch's norm backward). Nothing of the maps' size is kept for
// backward beyond the student itself: the node keeps the difference embedding (E = Σ_s s·C·(s·kh +
// s·kw) values per sample, 14·W·C for a square map and PLOP's scales) and the N distances.
// Precision: kernels/cpu/pod.h (D = (a − b)(a + b) and the window sums in double).
//
// Bad input throws strata::Error naming the op, the tensor and what was expected: undefined, non
// f32/f64 or non rank-4 maps, maps of different shapes, dtypes or devices (student logits with
// more channels than the teacher's must first be folded, incremental::fold_new_channels_into_background),
// an empty map, no scales or more than kernels::common::kMaxPodScales (8), a scale < 1, a scale
// larger than H or W (empty windows), and under `square` a map with H != W.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace strata {

enum class PodWindows {
  square,    // kh = kw = W // s; H != W is an error (PLOP's definition)
  per_axis,  // kh = H // s, kw = W // s
};

// "square" or "per_axis".
const char* to_string(PodWindows windows);

struct LocalPodOptions {
  std::vector<int64_t> scales = {1, 2, 4};  // PLOP's spp_scales
  PodWindows windows = PodWindows::square;
};

// teacher, student: (N,H,W,C), same dtype and device -> (N) distances, student's dtype.
Tensor local_pod_distance(const Tensor& teacher, const Tensor& student, const LocalPodOptions& options = {});

}  // namespace strata

// PLOP's entropy pseudo-labelling of background (SPEC-continual.md §3.7 (a)): the two device ops a
// step calls, on the teacher's low-resolution logits, each pixel's values those of the logits
// bilinearly upsampled to the labels' resolution (as PLOP upsamples the old model's output to the
// crop before its softmax), never building that plane. Per-pixel math and the two entropy
// variants: kernels/common/pseudo_labels.h. Host-side thresholds: incremental/pseudo_labels.h.
//
//   accumulate_entropy_histogram(histogram, teacher_logits, labels, options)
//     histogram:      (C_old, 100) i64 on the teacher's device, accumulated in place: += the count
//                     of pixels labelled 0 by (ĉ = the teacher's argmax, bin of its normalised
//                     entropy e). Rows are the teacher's C_old classes, the only ones ĉ can take
//                     (PLOP's has C_tot rows, those past C_old always empty).
//     teacher_logits: (N,h,w,C_old) f32/f64, the frozen teacher's logits before upsampling
//     labels:         (N,H,W) u8/i32/i64, the step's labels after its label table
//   Nothing waits for the device: call it once per batch and read the histogram once at the end.
//
//   entropy_pseudo_labels(teacher_logits, labels, thresholds, options) -> {labels, image_weights}
//     thresholds:     (C_old) of the teacher's dtype and device: τ per teacher class (NaN: never)
//     labels out:     (N,H,W), the labels' dtype: a pixel of label < C_old (background once the old
//                     classes are masked) becomes ĉ where e < τ_ĉ, options.ignore_index elsewhere;
//                     other labels are copied
//     image_weights:  (N), the teacher's dtype: PLOP's classifier adaptive factor
//                     γ_n = #(label < C_old ∧ e < τ_ĉ) / (#(label < C_old) + 1e-6), for
//                     FusedLossOptions::image_weights (engine/ops/fused_losses.h); an image with no
//                     background pixel gets γ = 0, its new-class pixels then weigh nothing (as in PLOP)
//   One pass, no read back to the host. Not differentiable (the teacher's outputs are targets).
//
// Labels are not validated here (values other than [0, C_tot) and ignore_index pass through to the
// loss, which reports them). Bad input throws strata::Error naming the op and the tensor or
// option: teacher logits not f32/f64 of rank 4, labels not u8/i32/i64 (N,H,W) with the teacher's
// N, tensors on different devices, old channels < 2, total_channels < C_old, a histogram that is
// not (C_old, 100) i64, thresholds that are not (C_old) of the teacher's dtype, an ignore_index
// below C_tot or that the labels' dtype cannot hold.
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "kernels/common/pseudo_labels.h"

namespace strata {

using kernels::common::kEntropyBins;
using kernels::common::PseudoMedian;

// "reference", "fixed"
const char* to_string(PseudoMedian median);

struct PseudoLabelOptions {
  int64_t total_channels = 0;  // C_tot: the step's classes (the reference variant divides by log C_tot)
  PseudoMedian median = PseudoMedian::reference;
  bool align_corners = false;  // of the upsampling PLOP applies (false there)
  int64_t ignore_index = 255;
};

void accumulate_entropy_histogram(const Tensor& histogram, const Tensor& teacher_logits, const Tensor& labels,
                                  const PseudoLabelOptions& options);

struct PseudoLabels {
  Tensor labels;         // (N,H,W)
  Tensor image_weights;  // (N)
};

PseudoLabels entropy_pseudo_labels(const Tensor& teacher_logits, const Tensor& labels, const Tensor& thresholds,
                                   const PseudoLabelOptions& options);

}  // namespace strata

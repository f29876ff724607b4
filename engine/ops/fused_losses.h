// Fused segmentation losses: the losses the continual methods compute on logits upsampled to the
// labels' resolution, evaluated from the low-resolution logits in one op that never builds a
// full-resolution plane of C values, forward or backward (kernels/common/fused_losses.h has the
// per-pixel math; incremental/losses.h the unfused compositions they equal).
//
//   fused_losses(logits, teacher_logits, labels, terms, options) -> values (K)
//     logits:         (N,h,w,C) f32/f64, the model's logits before upsampling
//     teacher_logits: (N,h,w,C_old), the frozen teacher's, before upsampling; required when a term
//                     reads the teacher (knowledge_distillation, unbiased_knowledge_distillation,
//                     knowledge_distillation_l2,
//                     icarl_distillation, icarl_disjoint, icarl_disjoint_bkg), else ignored (pass Tensor())
//     labels:         (N,H,W) u8/i32/i64, the full-resolution labels after the step's label table
//     options.image_weights: (N) of the logits' dtype and device, or undefined (all 1): image n's
//                     per-pixel losses, of every term, are multiplied by its weight before the
//                     reduction (PLOP's classifier adaptive factor γ, engine/ops/pseudo_labels.h);
//                     a target, not differentiated
//     values[k]:      terms[k].weight times term k reduced as terms[k].reduction says (sum, mean_all
//                     over all N·H·W pixels, or mean_valid over the labelled pixels), on the logits'
//                     device; the gradient flows to logits only (the teacher's are targets)
// Term k's per-pixel loss on the bilinearly upsampled logits (align_corners as options say):
//   cross_entropy                    cross_entropy(z, y)                    (engine/ops/losses.h)
//   unbiased_cross_entropy           incremental::unbiased_cross_entropy    (MiB, C_old = options.old_channels)
//   knowledge_distillation           incremental::knowledge_distillation    (LwF/ILT, α = options.alpha)
//   unbiased_knowledge_distillation  incremental::unbiased_knowledge_distillation (MiB)
//   icarl_bce                        incremental::icarl_bce                 (LwF-MC classification)
//   icarl_distillation               incremental::icarl_distillation        (LwF-MC distillation)
//   icarl_disjoint                   incremental::icarl_disjoint            (LwF-MC --icarl-disjoint)
//   icarl_disjoint_bkg               incremental::icarl_disjoint, keeping background (--icarl-bkg)
//   knowledge_distillation_l2        incremental::knowledge_distillation_l2 (--kd-loss l2, α = options.alpha)
// Several terms in one call share the pass over the logits (MiB's unce + unkd read each pixel's
// channels once). Reduction none is not offered: per-pixel losses are what the unfused compositions
// are for.
//
// Memory: the forward keeps five values per full-resolution pixel for the backward (its logsumexps,
// kernels/common/fused_losses.h's PixelStats) and the label statistics; the backward's only
// temporary is (N,H,w,C) on the CPU. Nothing is read back to the host: values and their gradients
// stay on the device, and invalid labels are reported as cross_entropy reports them
// (engine/ops/losses.h): at once on the CPU, at the device's next synchronisation on CUDA.
//
// Bad input throws strata::Error naming the op and the tensor or option: logits not f32/f64 of rank
// 4, labels of another dtype or batch, a teacher missing or of the wrong shape/dtype/device, no term
// or more than six, reduction none, mean_valid for an unlabelled term, old_channels outside what a
// term needs (1 <= C_old < C for the unbiased terms, 1 <= C_old <= C for the others that read it),
// a negative or non-finite weight, alpha <= 0, unbiased_knowledge_distillation and
// knowledge_distillation_l2 in one call (they share a per-pixel statistic), an ignore_index inside [0, C), image
// weights that are not (N) of the logits' dtype and device.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/ops/losses.h"
#include "engine/tensor.h"
#include "kernels/common/fused_losses.h"

namespace strata {

using kernels::common::PixelLoss;

// "cross_entropy", "unbiased_cross_entropy", ...
const char* to_string(PixelLoss kind);

struct FusedLossTerm {
  PixelLoss kind;
  double weight = 1.0;
  Reduction reduction = Reduction::mean_all;
};

struct FusedLossOptions {
  int64_t old_channels = 0;    // C_old: the teacher's channels and the unbiased terms' old classes
  double alpha = 1.0;          // multiplies the teacher logits before their softmax (MiB's --alpha)
  bool align_corners = false;  // of the upsampling the losses stand for (false in both references)
  int64_t ignore_index = 255;
  Tensor image_weights;  // (N) or undefined: per-image factors of every term's per-pixel losses
};

Tensor fused_losses(const Tensor& logits, const Tensor& teacher_logits, const Tensor& labels,
                    const std::vector<FusedLossTerm>& terms, const FusedLossOptions& options);

}  // namespace strata

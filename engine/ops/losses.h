// Losses, differentiable, f32/f64 on CPU and CUDA, matching PyTorch 1.13's torch.nn.functional losses.
//
// Labelled losses (the segmentation criterion):
//   cross_entropy(logits, labels, reduction, ignore_index)   = F.cross_entropy on the NCHW logits
//   nll(log_probs, labels, reduction, ignore_index)          = F.nll_loss
//     logits / log_probs: (N,H,W,C) or (N,C), f32 or f64
//     labels:             (N,H,W) or (N), dtype u8, i32 or i64
//   A pixel whose label equals ignore_index contributes 0 to the loss and to the gradient. The
//   gradient flows to logits / log_probs only (labels are integers). cross_entropy is fused: it
//   never materialises the log-softmax; for backward it keeps the logits and the two parts of each
//   pixel's logsumexp (2/C of the logits' size) instead of a softmax or gradient of the logits' size.
//
// Elementwise losses (no ignore index), a and b of the same shape and dtype, any rank:
//   bce_with_logits(logits, targets, reduction) = F.binary_cross_entropy_with_logits; gradients
//                                                 for logits and targets
//   mse(a, b, reduction)                        = F.mse_loss; gradients for a and b
//
// Output: reduction none -> per-pixel losses of the labels' shape (elementwise losses: the inputs'
// shape), ignored pixels 0; any other reduction -> a scalar (shape []) on the scores' device. Dtype
// of the scores. Nothing is read back to the host, forward or backward: a reduced loss is written
// by its kernel on the device, and its backward reads the upstream gradient (and, for mean_valid,
// the count of valid pixels) there (DESIGN.md, "One step, one direction").
//
// Bad input throws strata::Error naming the op, the tensor and what was expected: undefined or
// non-f32/f64 scores, ranks other than 4 or 2, zero classes, labels of another dtype or of a shape
// other than the scores' without C, mismatched shapes/dtypes/devices of elementwise inputs,
// mean_valid for an elementwise loss. A label outside [0, C) that is not ignore_index is checked in
// the kernel pass that reads the labels, and the error names the op, the value, its position, the
// labels, [0, C) and ignore_index. On the CPU the op throws it. On CUDA the op does not wait for
// the verdict: the device throws it at its next host synchronisation (the next item(), to_vector(),
// Tensor::to(cpu) or synchronize() of the device), noting so, and STRATA_CUDA_SYNC=1 makes the op
// itself throw (engine/ops/labels.h, engine/device_context.h). Until then the loss treats an
// invalid label as ignored.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

enum class Reduction {
  none,  // per-pixel (per-element) losses, labels' shape (resp. the input's shape)
  sum,
  mean_valid,  // PyTorch's 'mean': divides by the number of non-ignored pixels (0/0 = NaN as PyTorch)
  mean_all,    // MiB/PLOP: reduction='none' then .mean() -> divides by ALL B*H*W pixels, ignored ones count
};

// "none", "sum", "mean_valid" or "mean_all".
const char* to_string(Reduction reduction);

// logits: (N,H,W,C) or (N,C); labels: (N,H,W) or (N) of dtype u8, i32 or i64; label == ignore_index
// contributes 0; any other label outside [0, C) throws naming the value and its position.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index = 255);
Tensor nll(const Tensor& log_probs, const Tensor& labels, Reduction reduction, int64_t ignore_index = 255);
// Elementwise losses (no ignore index): reduction none, sum or mean_all ('mean'); mean_valid is rejected.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction);
Tensor mse(const Tensor& a, const Tensor& b, Reduction reduction);

}  // namespace strata

// PLOP's entropy pseudo-labelling on the CPU (T = float or double; labels L = uint8_t, int32_t or
// int64_t), with the names, arguments and contract of kernels/cuda/pseudo_labels.h, the backend
// last. The per-pixel math is kernels/common/pseudo_labels.h.
//
//   teacher:    (N, h, w, C_old)  the teacher's low-resolution logits
//   labels:     (N, H, W)         the step's labels (after its label table)
//   histogram:  (C_old, kEntropyBins) i64, accumulated: += the count of pixels labelled 0 per
//               (ĉ, bin(e))
//   thresholds: (C_old)           τ per teacher class
//   pseudo:     (N, H, W)         labels with every pixel of label < C_old replaced by ĉ where
//                                 e < τ_ĉ, by ignore_index elsewhere; other labels copied
//   image_weights: (N)            γ_n = #(label < C_old, e < τ_ĉ) / (#(label < C_old) + 1e-6)
#pragma once

#include <cstdint>

#include "kernels/common/pseudo_labels.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::PseudoLabelProblem;

template <class T, class L>
void entropy_histogram(int64_t* histogram, const T* teacher, const L* labels, const PseudoLabelProblem& problem,
                       const Backend& backend);

template <class T, class L>
void entropy_pseudo_labels(L* pseudo, T* image_weights, const T* teacher, const L* labels, const T* thresholds,
                           const PseudoLabelProblem& problem, const Backend& backend);

}  // namespace strata::kernels::cpu

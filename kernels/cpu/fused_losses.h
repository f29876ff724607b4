// The fused segmentation losses on the CPU (T = float or double; labels L = uint8_t, int32_t or
// int64_t), with the names, arguments and contract of kernels/cuda/fused_losses.h, the backend last.
// The per-pixel math and the problem description are kernels/common/fused_losses.h.
//
//   logits:  (N, h, w, C)       the low-resolution logits of the model being trained
//   teacher: (N, h, w, C_old)   the teacher's low-resolution logits, or null when no term reads them
//   image_weights: (N)          each image's factor of its per-pixel losses, or null (all 1)
//   labels:  (N, H, W)          full resolution
//   values:  (K)                term k's reduced value: weight_k · scale_k · Σ_p l_k(p)
//   pixel_stats: (N·H·W, kPixelStats) or null: what the backward reads per full-resolution pixel
//   label_stats: (kLabelStats)  the labels' statistics (kernels/common/labels.h), always written
//
// fused_losses_backward writes dlogits (N, h, w, C) from dvalues (K), the upstream gradient of
// `values`, read from memory (no value crosses to the host), with W_k = dvalues[k] · weight_k ·
// scale_k (1/valid labels from label_stats for a mean over valid pixels).
//
// Sums are taken per fixed chunk of rows in double and combined in chunk order: the same bits on any
// number of threads. The backward spreads each pixel's gradient over its two low-resolution columns
// within its row (one pass over the row's pixels, each gradient computed once) into a buffer of
// (N, H, w, C) values from scratch (w/W of a full-resolution plane set), then each low-resolution row
// gathers the full-resolution rows whose taps touch it.
#pragma once

#include <cstdint>

#include "kernels/common/fused_losses.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::FusedLossProblem;

template <class T, class L>
void fused_losses(T* values, T* pixel_stats, int64_t* label_stats, const T* logits, const T* teacher,
                  const T* image_weights, const L* labels, const FusedLossProblem& problem, const Backend& backend);

template <class T, class L>
void fused_losses_backward(T* dlogits, const T* dvalues, const int64_t* label_stats, const T* pixel_stats,
                           const T* logits, const T* teacher, const T* image_weights, const L* labels,
                           const FusedLossProblem& problem, const Backend& backend);

}  // namespace strata::kernels::cpu

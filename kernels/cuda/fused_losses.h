// The fused segmentation losses on CUDA, with the names, arguments and contract of
// kernels/cpu/fused_losses.h (read there what they compute), the backend last
// (kernels/cuda/backend.h). Values, their upstream gradients and the label statistics stay in
// device memory: a fused loss and its gradient never make the host wait.
#pragma once

#include <cstdint>

#include "kernels/common/fused_losses.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::FusedLossProblem;

template <class T, class L>
void fused_losses(T* values, T* pixel_stats, int64_t* label_stats, const T* logits, const T* teacher,
                  const T* image_weights, const L* labels, const FusedLossProblem& problem, const Backend& backend);

template <class T, class L>
void fused_losses_backward(T* dlogits, const T* dvalues, const int64_t* label_stats, const T* pixel_stats,
                           const T* logits, const T* teacher, const T* image_weights, const L* labels,
                           const FusedLossProblem& problem, const Backend& backend);

}  // namespace strata::kernels::cuda

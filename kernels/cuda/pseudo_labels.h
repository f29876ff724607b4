// PLOP's entropy pseudo-labelling on CUDA, with the names, arguments and contract of
// kernels/cpu/pseudo_labels.h (read there what they compute), the backend last
// (kernels/cuda/backend.h). Nothing is read back to the host: the histogram accumulates in device
// memory across calls. The per-pixel math is kernels/common/pseudo_labels.h.
#pragma once

#include <cstdint>

#include "kernels/common/pseudo_labels.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::PseudoLabelProblem;

template <class T, class L>
void entropy_histogram(int64_t* histogram, const T* teacher, const L* labels, const PseudoLabelProblem& problem,
                       const Backend& backend);

template <class T, class L>
void entropy_pseudo_labels(L* pseudo, T* image_weights, const T* teacher, const L* labels, const T* thresholds,
                           const PseudoLabelProblem& problem, const Backend& backend);

}  // namespace strata::kernels::cuda

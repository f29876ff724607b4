// Local POD CUDA kernels (T = float or double); the math and the embedding's layout are
// kernels/common/pod.h. The operations, names and arguments of kernels/cpu/pod.h, the backend last
// (kernels/cuda/backend.h: the compute stream).
//   N batch, H height, W width, C channels, E the embedding's values per sample; NHWC contiguous.
//
// Precision as on the CPU: D formed and window sums accumulated in double, each embedding value
// rounded to T once, d² summed in double over those rounded values (one block per sample, a fixed
// tree: deterministic); only the summation order differs from the CPU's.
#pragma once

#include <cstdint>

#include "kernels/common/pod.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// embedding[n] = Φ(a_n²) − Φ(b_n²), distance[n] = ‖embedding[n]‖₂.
//   teacher, student: (N,H,W,C) -> embedding: (N,E), distance: (N)
template <class T>
void local_pod(T* distance, T* embedding, const T* teacher, const T* student, const common::PodGeometry& geometry,
               const Backend& backend);

// dstudent = ∂(Σ_n ddistance[n] · distance[n]) / ∂student.
//   ddistance, distance: (N), embedding: (N,E), student: (N,H,W,C) -> dstudent: (N,H,W,C)
template <class T>
void local_pod_backward(T* dstudent, const T* ddistance, const T* distance, const T* embedding, const T* student,
                        const common::PodGeometry& geometry, const Backend& backend);

}  // namespace strata::kernels::cuda

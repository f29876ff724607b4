// Local POD CPU kernels (T = float or double); the math and the embedding's layout are
// kernels/common/pod.h. The operations, names and arguments of kernels/cuda/pod.h, the backend last.
//   N batch, H height, W width, C channels, E the embedding's values per sample; NHWC contiguous.
//
// Precision: D = (a − b)(a + b) is formed in double from the inputs, window sums are accumulated in
// double, each embedding value is rounded to T once, and d² = Σ e² sums those rounded values in
// double; sqrt in double, rounded to T once. Deterministic for any thread count (work items own
// disjoint outputs; per-sample partial sums are combined in a fixed order).
#pragma once

#include <cstdint>

#include "kernels/common/pod.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

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

}  // namespace strata::kernels::cpu

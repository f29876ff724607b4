// PLOP's entropy pseudo-labelling on CUDA (kernels/cpu/pseudo_labels.h says what it computes; the
// per-pixel math is kernels/common/pseudo_labels.h, shared with the CPU).
//
// Threads: one per full-resolution pixel, which interpolates its C_old teacher logits from the
// four low-resolution taps as it reads them. The histogram and the per-image tallies are integer
// atomics (exact in any order); a last kernel of one thread per image turns the tallies into γ.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/pseudo_labels.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pseudo_labels.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

constexpr unsigned kThreads = 256;

using Count = unsigned long long;  // atomicAdd's 64-bit integer type

template <class T>
struct PixelPosition {
  int64_t n;
  cm::BilinearTaps<T> v, h;
};

template <class T>
__device__ inline PixelPosition<T> pixel_position(int64_t p, const PseudoLabelProblem& problem) {
  const int64_t x = p % problem.width, y = (p / problem.width) % problem.height,
                n = p / (problem.width * problem.height);
  const T scale_v = cm::bilinear_scale<T>(problem.low_height, problem.height, problem.align_corners);
  const T scale_h = cm::bilinear_scale<T>(problem.low_width, problem.width, problem.align_corners);
  return {n, cm::bilinear_taps<T>(scale_v, y, problem.low_height, problem.align_corners),
          cm::bilinear_taps<T>(scale_h, x, problem.low_width, problem.align_corners)};
}

template <class T, class L>
__global__ void entropy_histogram_kernel(Count* histogram, const T* teacher, const L* labels,
                                         PseudoLabelProblem problem) {
  STRATA_FOR_EACH_INDEX(p, problem.pixels()) {
    if (static_cast<int64_t>(labels[p]) != 0) continue;
    const PixelPosition<T> at = pixel_position<T>(p, problem);
    const cm::TeacherVerdict<T> v = cm::teacher_pixel_verdict<T>(problem, teacher, at.n, at.v, at.h);
    atomicAdd(histogram + v.cls * cm::kEntropyBins + cm::entropy_bin(v.entropy), Count{1});
  }
}

// tallies: (N, 2) background pixels and kept ones per image, zeroed before.
template <class T, class L>
__global__ void entropy_pseudo_labels_kernel(L* pseudo, Count* tallies, const T* teacher, const L* labels,
                                             const T* thresholds, PseudoLabelProblem problem) {
  STRATA_FOR_EACH_INDEX(p, problem.pixels()) {
    const L label = labels[p];
    const int64_t value = static_cast<int64_t>(label);
    if (value < 0 || value >= problem.old_channels) {
      pseudo[p] = label;
      continue;
    }
    const PixelPosition<T> at = pixel_position<T>(p, problem);
    const cm::TeacherVerdict<T> v = cm::teacher_pixel_verdict<T>(problem, teacher, at.n, at.v, at.h);
    const bool valid = v.entropy < thresholds[v.cls];
    pseudo[p] = static_cast<L>(valid ? v.cls : problem.ignore_index);
    atomicAdd(tallies + 2 * at.n, Count{1});
    if (valid) atomicAdd(tallies + 2 * at.n + 1, Count{1});
  }
}

template <class T>
__global__ void image_weights_kernel(T* image_weights, const Count* tallies, int64_t batch) {
  STRATA_FOR_EACH_INDEX(n, batch) {
    image_weights[n] = static_cast<T>(tallies[2 * n + 1]) / (static_cast<T>(tallies[2 * n]) + static_cast<T>(1e-6));
  }
}

}  // namespace

template <class T, class L>
void entropy_histogram(int64_t* histogram, const T* teacher, const L* labels, const PseudoLabelProblem& problem,
                       const Backend& backend) {
  static_assert(sizeof(Count) == sizeof(int64_t));
  STRATA_LAUNCH((entropy_histogram_kernel<T, L>), backend.stream, blocks_for(problem.pixels(), kThreads), kThreads, 0,
                reinterpret_cast<Count*>(histogram), teacher, labels, problem);
}

template <class T, class L>
void entropy_pseudo_labels(L* pseudo, T* image_weights, const T* teacher, const L* labels, const T* thresholds,
                           const PseudoLabelProblem& problem, const Backend& backend) {
  Count* tallies = backend.scratch->array<Count>(2 * problem.batch);
  STRATA_CUDA_CHECK(
      cudaMemsetAsync(tallies, 0, sizeof(Count) * static_cast<size_t>(2 * problem.batch), backend.stream.handle));
  STRATA_LAUNCH((entropy_pseudo_labels_kernel<T, L>), backend.stream, blocks_for(problem.pixels(), kThreads), kThreads,
                0, pseudo, tallies, teacher, labels, thresholds, problem);
  STRATA_LAUNCH((image_weights_kernel<T>), backend.stream, blocks_for(problem.batch, kThreads), kThreads, 0,
                image_weights, static_cast<const Count*>(tallies), problem.batch);
}

#define STRATA_INSTANTIATE(T, L)                                                                                  \
  template void entropy_histogram<T, L>(int64_t*, const T*, const L*, const PseudoLabelProblem&, const Backend&); \
  template void entropy_pseudo_labels<T, L>(L*, T*, const T*, const L*, const T*, const PseudoLabelProblem&,      \
                                            const Backend&);
STRATA_INSTANTIATE(float, uint8_t)
STRATA_INSTANTIATE(float, int32_t)
STRATA_INSTANTIATE(float, int64_t)
STRATA_INSTANTIATE(double, uint8_t)
STRATA_INSTANTIATE(double, int32_t)
STRATA_INSTANTIATE(double, int64_t)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda

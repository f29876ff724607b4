// Loss CUDA kernels (T = float or double; label type L = uint8_t, int32_t or int64_t), with the semantics of
// kernels/cpu/losses.h and its argument order, plus what keeps the step on the device:
//
// - Forward kernels write the per-element losses to `loss` when it is not null and, when `reduced`
//   is not null, the scalar loss: the sum of the per-element losses (accumulated in double, per
//   block in a fixed tree, the blocks combined in order) times LossReduction's factor. Scratch:
//   `partial_sums` (and `partial_counts`, two per block) of *_partials(...) entries.
// - Labelled forward kernels validate the labels in the same pass: stats = {number of pixels whose
//   label is not ignore_index, the first pixel whose label is neither ignore_index nor in [0, C), or
//   -1}. A pixel with an invalid label is skipped (as if ignored) so no kernel reads out of bounds;
//   the caller reads stats and throws (the CPU's check, reported after the pass instead of before).
// - Backward kernels scale element i's derivative by w_i = dloss ? dloss[i] : *dreduced * factor
//   (in double, rounded to T as the CPU's `scale`): dloss is the upstream gradient of reduction
//   'none'; for a reduced loss dreduced is its upstream gradient, a device scalar read by the kernel
//   (no host synchronisation), and factor the reduction's 1/count.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// reduced = sum * (per_valid ? 1 / valid : scale); 1 / 0 valid pixels is NaN, as in PyTorch.
struct LossReduction {
  double scale = 1.0;
  bool per_valid = false;
};

// Cross-entropy from logits: loss[p] = logsumexp(x[p, :]) - x[p, label[p]]; lse (may be null):
// (P, 2) = (max, log sum exp(x - max)) per pixel, 0 for ignored pixels.
// backward: dx[p, c] = w_p (softmax(x[p, :])_c - [c == label[p]]), 0 on ignored pixels.
//   x, dx: (P, C); labels, loss, dloss: (P); stats: (2) int64; reduced, dreduced: ()
template <class T, class L>
void cross_entropy_cuda(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                        int64_t channels, int64_t ignore_index, const LossReduction& reduction, double* partial_sums,
                        int64_t* partial_counts, const Stream& stream);
template <class T>
int64_t cross_entropy_partials(int64_t pixels, int64_t channels);
template <class T, class L>
void cross_entropy_backward_cuda(T* dx, const T* dloss, const T* dreduced, double factor, const T* x, const T* lse,
                                 const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index,
                                 const Stream& stream);

// Negative log-likelihood: loss[p] = -log_probs[p, label[p]]; backward dlog_probs[p, c] = -w_p [c == label[p]].
template <class T, class L>
void nll_cuda(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels,
              int64_t channels, int64_t ignore_index, const LossReduction& reduction, double* partial_sums,
              int64_t* partial_counts, const Stream& stream);
int64_t nll_partials(int64_t pixels);
template <class T, class L>
void nll_backward_cuda(T* dlog_probs, const T* dloss, const T* dreduced, double factor, const L* labels,
                       int64_t pixels, int64_t channels, int64_t ignore_index, const Stream& stream);

// Binary cross-entropy with logits: loss_i = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|)).
// backward: dx_i = w_i (sigmoid(x_i) - t_i), dt_i = -w_i x_i; either output may be null.
template <class T>
void bce_with_logits_cuda(T* loss, T* reduced, const T* x, const T* targets, int64_t n,
                          const LossReduction& reduction, double* partial_sums, const Stream& stream);
template <class T>
void bce_with_logits_backward_cuda(T* dx, T* dtargets, const T* dloss, const T* dreduced, double factor, const T* x,
                                   const T* targets, int64_t n, const Stream& stream);

// Squared error: loss_i = (a_i - b_i)^2; backward da_i = 2 w_i (a_i - b_i), db_i = -da_i; either
// output may be null.
template <class T>
void mse_cuda(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
              double* partial_sums, const Stream& stream);
template <class T>
void mse_backward_cuda(T* da, T* db, const T* dloss, const T* dreduced, double factor, const T* a, const T* b,
                       int64_t n, const Stream& stream);
// Scratch of the elementwise losses' forward kernels.
int64_t elementwise_loss_partials(int64_t n);

}  // namespace strata::kernels::cuda

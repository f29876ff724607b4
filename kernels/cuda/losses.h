// Loss CUDA kernels (T = float or double; label type L = uint8_t, int32_t or int64_t) with the names,
// arguments and contract of kernels/cpu/losses.h, the backend last (kernels/cuda/backend.h): the
// forward writes the scalar loss and the label statistics to device memory and the backward reads
// the upstream gradient (and the valid count) from there, so a loss and its gradient never make the
// host wait. Sums are accumulated in double per thread in a fixed order, per block in a fixed tree,
// and the blocks combined in order (partials in the backend's scratch memory): deterministic, and in
// f64 as accurate as the CPU's.
//   P pixels (rows) of C classes, n elements; arrays are contiguous device memory.
#pragma once

#include <cstdint>

#include "kernels/common/losses.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::LossReduction;
using common::LossUpstream;

// Cross-entropy from logits: loss[p] = logsumexp(x[p, :]) - x[p, label[p]]; lse (may be null):
// (P, 2) = (max, log sum exp(x - max)) per pixel, 0 for ignored pixels.
// backward: dx[p, c] = w_p (softmax(x[p, :])_c - [c == label[p]]), 0 on ignored pixels.
//   x, dx: (P, C); labels, loss: (P); stats: (3); reduced: ()
template <class T, class L>
void cross_entropy(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                   int64_t channels, int64_t ignore_index, const LossReduction& reduction, const Backend& backend);
template <class T, class L>
void cross_entropy_backward(T* dx, const LossUpstream<T>& upstream, const T* x, const T* lse, const L* labels,
                            int64_t pixels, int64_t channels, int64_t ignore_index, const Backend& backend);

// Negative log-likelihood: loss[p] = -log_probs[p, label[p]]; backward dlog_probs[p, c] = -w_p [c == label[p]].
template <class T, class L>
void nll(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
         int64_t ignore_index, const LossReduction& reduction, const Backend& backend);
template <class T, class L>
void nll_backward(T* dlog_probs, const LossUpstream<T>& upstream, const L* labels, int64_t pixels, int64_t channels,
                  int64_t ignore_index, const Backend& backend);

// Binary cross-entropy with logits: loss_i = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|)).
// backward: dx_i = w_i (sigmoid(x_i) - t_i), dt_i = -w_i x_i; either output may be null.
template <class T>
void bce_with_logits(T* loss, T* reduced, const T* x, const T* targets, int64_t n, const LossReduction& reduction,
                     const Backend& backend);
template <class T>
void bce_with_logits_backward(T* dx, T* dtargets, const LossUpstream<T>& upstream, const T* x, const T* targets,
                              int64_t n, const Backend& backend);

// Squared error: loss_i = (a_i - b_i)^2; backward da_i = 2 w_i (a_i - b_i), db_i = -da_i; either
// output may be null.
template <class T>
void mse(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
         const Backend& backend);
template <class T>
void mse_backward(T* da, T* db, const LossUpstream<T>& upstream, const T* a, const T* b, int64_t n,
                  const Backend& backend);

}  // namespace strata::kernels::cuda

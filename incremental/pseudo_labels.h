// PLOP's entropy pseudo-labelling of background (SPEC-continual.md §3.7 (a)), the host side: the
// per-class thresholds τ read from the entropy histogram, the value that carries them in the step
// checkpoint, and the pass over a step's training data that computes them before the step trains.
// The device ops (the histogram, the pseudo-labels and the adaptive factor γ) are
// engine/ops/pseudo_labels.h; the γ-weighted cross-entropy is engine/ops/fused_losses.h with
// FusedLossOptions::image_weights.
//
// Two variants (`--pseudo-median`):
//   reference  PLOP's code (train.py `find_median`, commit 4b4a060) to the bit: the entropy
//              normalised twice (kernels/common/pseudo_labels.h), and the "median" read by a loop
//              whose running sum adds the bin *index* (i/100·100, so bins 29, 57 and 58 read bins
//              28, 56 and 57) instead of the bin's count, in float32 as the tensors there:
//                [60,40] -> 0.008333 (right only when bin 0 holds at least half)
//                [40,60] -> 0.018333 (true median 0.011667)
//                [5000 in bin 0, 1000 in each of bins 10..16] -> runs to the end with half > 4950 and
//                bin 99 empty: +inf, every pixel of the class accepted
//                [40,30,30] -> runs past the last bin: (half − 4950)/0 = −inf, floored to 0.001
//                [40,25,25] -> stops on an empty bin: 0/0 = NaN; max(NaN, 0.001) keeps NaN (Python's
//                max), so that class is never pseudo-labelled
//   fixed      the true median of e = H(p)/log C_old, interpolated linearly within its bin.
// Both then take τ_c = max(τ_c, minimum) (PLOP's --threshold, 0.001), NaN kept. A class with no
// pixel gets τ = minimum (PLOP: 0, then the floor).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops/pseudo_labels.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace strata::incremental {

inline constexpr double kPlopMinimumThreshold = 0.001;  // PLOP's `threshold` under --method PLOP

// One class's median from its histogram row of `bins` counts (bins of width 1/bins over [0, 1]).
float reference_histogram_median(const int64_t* counts, int64_t bins);
float true_histogram_median(const int64_t* counts, int64_t bins);

struct PseudoLabelThresholds {
  PseudoMedian median = PseudoMedian::reference;
  std::vector<float> values;  // τ per teacher class (C_old); reference: NaN (never) and +inf (always) occur

  // histogram: (C_old · kEntropyBins) counts, row-major as accumulate_entropy_histogram writes them.
  // Throws when its size is not a multiple of kEntropyBins or a count is negative.
  static PseudoLabelThresholds from_histogram(const std::vector<int64_t>& histogram, PseudoMedian median,
                                              double minimum = kPlopMinimumThreshold);

  // τ as the tensor entropy_pseudo_labels reads: (C_old) of `dtype` on `device`.
  Tensor tensor(DType dtype, const Device& device) const;

  // The method-state tensors of the step checkpoint (names without the "method." prefix):
  // "pseudo_thresholds" f32 (C_old), its finite values (0 where τ is not finite),
  // "pseudo_threshold_kinds" i64 (C_old): 0 finite, 1 NaN, 2 +inf, 3 −inf, and "pseudo_median" i64
  // (1): 0 reference, 1 fixed. Every tensor is finite (checkpoints holding NaN or Inf are refused,
  // incremental/checkpoint.h) and from_state gives back the same bits.
  TensorMap state() const;
  // Reads state(); throws naming `source` and the tensor when one is missing or malformed.
  static PseudoLabelThresholds from_state(const TensorMap& state, const std::string& source);
};

// The pass over a step's training data before it trains (PLOP's Trainer.before -> find_median).
struct ThresholdBatch {
  Tensor images;  // whatever `teacher_logits` takes
  Tensor labels;  // (N,H,W) the step's labels after its label table, on the teacher's device
};
using NextThresholdBatch = std::function<std::optional<ThresholdBatch>()>;  // nullopt: no more batches
using TeacherLogits = std::function<Tensor(const Tensor& images)>;          // (N,h,w,C_old), no graph
using ThresholdProgress = std::function<void(int64_t batches_done)>;

// Runs the teacher over every batch next() yields, accumulating the histogram on the device (no
// read back per batch: one read at the end), calls progress after each batch, and returns the
// thresholds of options.median. Throws when next() yields no batch, and the ops' errors.
PseudoLabelThresholds compute_pseudo_label_thresholds(const NextThresholdBatch& next,
                                                      const TeacherLogits& teacher_logits,
                                                      const PseudoLabelOptions& options,
                                                      const ThresholdProgress& progress = {},
                                                      double minimum = kPlopMinimumThreshold);

}  // namespace strata::incremental

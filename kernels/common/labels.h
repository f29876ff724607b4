// Class labels as the kernels that read them see them (the labelled losses, map_labels), shared by
// both backends. A label is valid when it is a class in [0, classes); ignore_index marks a pixel to
// skip; anything else is invalid. Kernels never index with an invalid label (they treat it as
// ignored) and report it instead in three 64-bit label statistics, written once per call:
//   stats[kValidLabels]   the number of valid labels (ignored and invalid ones excluded)
//   stats[kFirstInvalid]  the first position whose label is invalid, or -1
//   stats[kInvalidValue]  that label's value (0 when there is none)
// The engine turns them into the op's error (engine/ops/labels.h); the backward passes of the
// losses read the valid count from them (PyTorch's mean over non-ignored pixels).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

inline constexpr int kValidLabels = 0;
inline constexpr int kFirstInvalid = 1;
inline constexpr int kInvalidValue = 2;
inline constexpr int kLabelStats = 3;

STRATA_HOST_DEVICE inline bool label_is_invalid(int64_t label, int64_t classes, int64_t ignore_index) {
  return label != ignore_index && (label < 0 || label >= classes);
}

// A class a kernel may index with: neither ignore_index nor invalid.
STRATA_HOST_DEVICE inline bool label_is_class(int64_t label, int64_t classes, int64_t ignore_index) {
  return label != ignore_index && label >= 0 && label < classes;
}

// A tally over labels visited in any order and split in any way (threads, chunks, blocks): the valid
// labels and the smallest invalid position, so merged tallies do not depend on the split.
struct LabelTally {
  static constexpr int64_t kNone = INT64_MAX;
  int64_t valid = 0;
  int64_t first_invalid = kNone;

  // Counts the label at position p; true when it is a class the kernel may index with.
  STRATA_HOST_DEVICE bool count(int64_t p, int64_t label, int64_t classes, int64_t ignore_index) {
    if (label_is_class(label, classes, ignore_index)) {
      ++valid;
      return true;
    }
    if (label != ignore_index && p < first_invalid) first_invalid = p;
    return false;
  }
  STRATA_HOST_DEVICE void merge(const LabelTally& other) {
    valid += other.valid;
    if (other.first_invalid < first_invalid) first_invalid = other.first_invalid;
  }
};

// stats (kLabelStats values) from the tally of `labels`.
template <class L>
STRATA_HOST_DEVICE inline void write_label_stats(int64_t* stats, const LabelTally& tally, const L* labels) {
  const bool any_invalid = tally.first_invalid != LabelTally::kNone;
  stats[kValidLabels] = tally.valid;
  stats[kFirstInvalid] = any_invalid ? tally.first_invalid : -1;
  stats[kInvalidValue] = any_invalid ? static_cast<int64_t>(labels[tally.first_invalid]) : 0;
}

}  // namespace strata::kernels::common

// Label statistics (kernels/common/labels.h) gathered on CUDA without atomics, in the pass that reads
// the labels: each thread tallies its labels (common::LabelTally), each block combines its threads'
// tallies in a fixed tree into one partial, and one block combines the partials and writes the
// statistics. A sum and a minimum: the result does not depend on the schedule. Include from .cu
// files only; the kernels calling these run blocks of kLabelStatsThreads threads.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/labels.h"
#include "kernels/cuda/kernel_utils.h"

namespace strata::kernels::cuda {

constexpr unsigned kLabelStatsThreads = 256;

// Block b's partial: partial_counts[2 b] = valid labels, [2 b + 1] = the first invalid position
// (LabelTally::kNone when none). Called by every thread of the block.
__device__ inline void write_tally_partial(int64_t* partial_counts, const common::LabelTally& tally) {
  __shared__ int64_t counts[kLabelStatsThreads];
  const int64_t valid = block_reduce(tally.valid, counts, SumOp{});
  const int64_t first_invalid = block_reduce(tally.first_invalid, counts, MinOp{});
  if (threadIdx.x == 0) {
    partial_counts[2 * blockIdx.x] = valid;
    partial_counts[2 * blockIdx.x + 1] = first_invalid;
  }
}

// Combines `blocks` partials, writes stats (kLabelStats values) and returns the valid count to every
// thread. Called by every thread of a single block.
template <class L>
__device__ inline int64_t write_label_stats_from_partials(int64_t* stats, const int64_t* partial_counts, int64_t blocks,
                                                          const L* labels) {
  __shared__ int64_t counts[kLabelStatsThreads];
  common::LabelTally tally;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) {
    tally.merge(common::LabelTally{partial_counts[2 * b], partial_counts[2 * b + 1]});
  }
  tally.valid = block_reduce(tally.valid, counts, SumOp{});
  tally.first_invalid = block_reduce(tally.first_invalid, counts, MinOp{});
  if (threadIdx.x == 0) common::write_label_stats(stats, tally, labels);
  return tally.valid;
}

}  // namespace strata::kernels::cuda

// Label remapping on CUDA (kernels/cuda/labels.h): one thread per label (grid-stride), which maps it
// and tallies it; the label statistics are combined as label_stats.cuh describes.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/labels.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/label_stats.cuh"
#include "kernels/cuda/labels.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

template <class L>
__global__ void map_labels_kernel(int64_t* out, int64_t* partial_counts, const L* labels, const int64_t* table,
                                  int64_t n, int64_t classes, int64_t ignore_index) {
  common::LabelTally tally;
  STRATA_FOR_EACH_INDEX(i, n) {
    const int64_t label = static_cast<int64_t>(labels[i]);
    out[i] = tally.count(i, label, classes, ignore_index) ? table[label] : ignore_index;
  }
  write_tally_partial(partial_counts, tally);
}

template <class L>
__global__ void label_stats_kernel(int64_t* stats, const int64_t* partial_counts, int64_t blocks, const L* labels) {
  write_label_stats_from_partials(stats, partial_counts, blocks, labels);
}

}  // namespace

template <class L>
void map_labels(int64_t* out, int64_t* stats, const L* labels, const int64_t* table, int64_t n, int64_t classes,
                int64_t ignore_index, const Backend& backend) {
  const unsigned blocks = blocks_for(n, kLabelStatsThreads);
  int64_t* partial_counts = backend.scratch->array<int64_t>(2 * static_cast<int64_t>(blocks));
  STRATA_LAUNCH((map_labels_kernel<L>), backend.stream, blocks, kLabelStatsThreads, 0, out, partial_counts, labels,
                table, n, classes, ignore_index);
  STRATA_LAUNCH((label_stats_kernel<L>), backend.stream, 1, kLabelStatsThreads, 0, stats, partial_counts,
                static_cast<int64_t>(blocks), labels);
}

template void map_labels<uint8_t>(int64_t*, int64_t*, const uint8_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);
template void map_labels<int32_t>(int64_t*, int64_t*, const int32_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);
template void map_labels<int64_t>(int64_t*, int64_t*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);

}  // namespace strata::kernels::cuda

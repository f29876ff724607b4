// parallel_for: splits [begin, end) into chunks of `grain` items and runs f(chunk_begin,
// chunk_end) on OpenMP threads. Chunk boundaries depend only on `grain`, never on the number of
// threads, so a kernel that reduces within chunks and then combines chunk results in order gives
// bit-identical results on 1 or 64 threads.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (end - begin + grain - 1) / grain;
  if (chunks == 1) {
    f(begin, end);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t lo = begin + c * grain;
    int64_t hi = lo + grain < end ? lo + grain : end;
    f(lo, hi);
  }
}

// Elements per chunk for cheap elementwise loops: below this, threading costs more than it saves.
inline constexpr int64_t kElementwiseGrain = 1 << 16;

// Rows per chunk for a loop over rows of `work_per_row` cheap elements each: about kElementwiseGrain
// elements per chunk, at least one row.
inline int64_t rows_per_chunk(int64_t work_per_row) {
  const int64_t per_row = work_per_row > 1 ? work_per_row : 1;
  return kElementwiseGrain / per_row > 1 ? kElementwiseGrain / per_row : 1;
}

}  // namespace strata::kernels::cpu

// Label remapping (kernels/cpu/labels.h): per fixed chunk, a tally of the labels (valid count and
// first invalid position, kernels/common/labels.h), combined in chunk order.
#include "kernels/cpu/labels.h"

#include <vector>

#include "kernels/common/labels.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class L>
void map_labels(int64_t* out, int64_t* stats, const L* labels, const int64_t* table, int64_t n, int64_t classes,
                int64_t ignore_index, const Backend&) {
  const int64_t chunks = (n + kElementwiseGrain - 1) / kElementwiseGrain;
  std::vector<common::LabelTally> tallies(static_cast<size_t>(chunks > 0 ? chunks : 1));
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    common::LabelTally& tally = tallies[static_cast<size_t>(lo / kElementwiseGrain)];
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t label = static_cast<int64_t>(labels[i]);
      out[i] = tally.count(i, label, classes, ignore_index) ? table[label] : ignore_index;
    }
  });
  common::LabelTally total;
  for (const common::LabelTally& tally : tallies) total.merge(tally);
  common::write_label_stats(stats, total, labels);
}

template void map_labels<uint8_t>(int64_t*, int64_t*, const uint8_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);
template void map_labels<int32_t>(int64_t*, int64_t*, const int32_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);
template void map_labels<int64_t>(int64_t*, int64_t*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                  const Backend&);

}  // namespace strata::kernels::cpu

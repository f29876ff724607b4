// Class labels: remapping, and the validation every op that reads labels shares.
//
//   map_labels(labels, table, ignore_index) -> out (i64, the labels' shape and device)
//     out[i] = table[labels[i]]  when 0 <= labels[i] < size(table)
//     out[i] = ignore_index      when labels[i] == ignore_index
//     labels: any shape, u8, i32 or i64; table: (K) i64 on the labels' device, or a host vector the
//     op uploads (a host-to-device copy through the pinned staging buffers: no host
//     synchronisation). Table values are not checked. Not differentiable (integer data).
//   The output is i64 whatever the labels' dtype, so any table value fits (MiB's unbiased
//   cross-entropy maps the labels of step t with a table of the step's classes, incremental/).
//
// Invalid labels. Any other label value (negative, >= size(table) and not ignore_index) is invalid;
// the losses (engine/ops/losses.h) define it the same way with C classes. Kernels check the labels
// in the pass that reads them and report the first invalid one in three i64 statistics
// (kernels/common/labels.h), from which the op throws strata::Error naming the op, the value, its
// position ((n=.., h=.., w=..) for (N,H,W) labels, (n=..) for (N) labels, (i=..) otherwise), the
// labels' description, the range [0, K) and ignore_index:
//   - on the CPU the op throws at once, before it returns;
//   - on CUDA the op returns without waiting for the device, and the device throws that error at its
//     next host synchronisation (the next Tensor::to(cpu), to_vector, item or synchronize() of the
//     device, engine/device_context.h), noting that it was detected there. A training step thus
//     never waits for its labels' verdict (DESIGN.md, "One step, one direction": nothing inside a
//     step reads a value back to the host), and a bad label still stops the run at its next loss
//     readout. With STRATA_CUDA_SYNC=1 the device synchronises after the op and the error is thrown
//     by the op itself.
// Other bad input throws at once on every device: labels or table undefined, labels not u8/i32/i64,
// a table that is not rank-1 i64, or a table on another device than the labels.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace strata {

// `op` names the operation in error messages: an op that remaps its labels passes its own name
// (incremental::unbiased_cross_entropy does), so an invalid label is reported as that op's input.
Tensor map_labels(const Tensor& labels, const Tensor& table, int64_t ignore_index = 255,
                  const char* op = "map_labels");
Tensor map_labels(const Tensor& labels, const std::vector<int64_t>& table, int64_t ignore_index = 255,
                  const char* op = "map_labels");

// ---- for ops that read class labels ----

inline bool is_label_dtype(DType dtype) { return dtype == DType::u8 || dtype == DType::i32 || dtype == DType::i64; }

// f(L{}) with L = uint8_t, int32_t or int64_t from `dtype`; other dtypes are refused naming the op.
template <class F>
decltype(auto) visit_label(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::u8: return f(uint8_t{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    default: break;
  }
  throw Error(cat(op, ": labels must be u8, i32 or i64, got ", dtype_name(dtype)));
}

// An i64 tensor for the label statistics a kernel writes (kernels/common/labels.h), on `device`.
Tensor label_stats_tensor(const Device& device);

// Validates labels from the statistics `stats` a kernel wrote for them (classes valid labels
// [0, classes), ignore_index skipped): throws now on the CPU, at the device's next host
// synchronisation on CUDA (above).
void check_label_stats(const char* op, const Tensor& stats, const Tensor& labels, int64_t classes,
                       int64_t ignore_index);

}  // namespace strata

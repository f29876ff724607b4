// Replicate (edge) padding along one axis, shared by the CPU and CUDA kernels
// (torch.nn.functional.pad(mode="replicate")): with `before` padded entries in front of an axis of
// `size` >= 1 inputs and `out_size` = size + before + after outputs,
//   output o copies input clamp(o - before, 0, size - 1);
//   input i is copied by the outputs [i == 0 ? 0 : i + before, i == size - 1 ? out_size : i + before + 1),
// so the backward is a gather over that range per axis.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

STRATA_HOST_DEVICE inline int64_t replicate_source(int64_t o, int64_t before, int64_t size) {
  int64_t i = o - before;
  return i < 0 ? 0 : (i >= size ? size - 1 : i);
}

struct CopyRange {
  int64_t begin;
  int64_t end;
};

STRATA_HOST_DEVICE inline CopyRange replicate_copied_by(int64_t i, int64_t size, int64_t before, int64_t out_size) {
  return {i == 0 ? 0 : i + before, i == size - 1 ? out_size : i + before + 1};
}

}  // namespace strata::kernels::common

// The cases of map_labels, checked against the definition on the CPU (tests/engine/test_labels.cpp)
// and against the CPU on CUDA (tests/cuda/test_labels.cpp). Integer inputs and output, so a case is
// its tensors rather than an OpCase (tests/support/op_cases.h) of differentiable inputs. The first
// case is the remap of MiB's unbiased cross-entropy (SPEC-continual.md): at a step with `old` old
// classes out of `total`, labels below `old` (background and old classes) become 0, new class y
// becomes 1 + (y - old), and 255 stays 255.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/labels.h"
#include "engine/tensor.h"

namespace strata::test {

// MiB's table for labels in [0, total): y < old -> 0, y >= old -> 1 + (y - old).
inline std::vector<int64_t> unbiased_table(int64_t old, int64_t total) {
  std::vector<int64_t> table(static_cast<size_t>(total));
  for (int64_t y = 0; y < total; ++y) table[static_cast<size_t>(y)] = y < old ? 0 : 1 + (y - old);
  return table;
}

// Labels of `shape` cycling through [0, classes) with every seventh pixel set to `ignore_index`.
inline Tensor labels_in_range(const Shape& shape, int64_t classes, int64_t ignore_index, DType dtype) {
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 7 == 3 ? ignore_index : static_cast<int64_t>(i * 5 % classes);
  return Tensor::from_vector(v, shape).to(dtype);
}

// (2,3,4) labels of class 1 with an invalid 7 at (n=1, h=1, w=3), the first invalid one, another
// invalid 9 after it and an ignored 255 before it; on the CPU.
inline Tensor labels_with_invalid(DType dtype) {
  std::vector<int64_t> v(2 * 3 * 4, 1);
  v[1 * 12 + 1 * 4 + 3] = 7;
  v[23] = 9;
  v[5] = 255;
  return Tensor::from_vector(v, {2, 3, 4}).to(dtype);
}

struct MapLabelsCase {
  std::string name;
  Tensor labels;
  std::vector<int64_t> table;
  int64_t ignore_index;
};

inline std::vector<MapLabelsCase> map_labels_cases() {
  std::vector<int64_t> shuffled = {4, -3, 17, 0, 1000000007, 2};
  return {{"MiB's unbiased remap, VOC 15-5 step 1, u8 (2,9,11)", labels_in_range({2, 9, 11}, 21, 255, DType::u8),
           unbiased_table(16, 21), 255},
          {"MiB's unbiased remap, ADE 100-50 step 1, i32 (1,37,41)", labels_in_range({1, 37, 41}, 151, 255, DType::i32),
           unbiased_table(101, 151), 255},
          {"any table, i64 labels (13), ignore_index -1", labels_in_range({13}, 6, -1, DType::i64), shuffled, -1},
          {"many blocks, i64 (1,300,301)", labels_in_range({1, 300, 301}, 6, 255, DType::i64), shuffled, 255}};
}

}  // namespace strata::test

// The case tables of max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool and the MiB head's evaluation pooling
// (avg_pool2d then pad_replicate) (tests/support/op_cases.h), shared by the CPU gradient checks
// (tests/engine/test_pooling.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_pooling.cpp): the
// ResNet stem, dilation, rectangular windows, ceil mode and its dropped last window, padding in and
// out of the divisor, odd shapes. Max pooling takes separated values, so no window sits on a tie
// within a finite-difference step.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline Pool2dParams pool(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h = 0,
                         int64_t pad_w = 0, int64_t dilation_h = 1, int64_t dilation_w = 1, bool ceil_mode = false,
                         bool count_include_pad = true) {
  Pool2dParams p{kernel_h, kernel_w, stride_h, stride_w};
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  p.dilation_h = dilation_h;
  p.dilation_w = dilation_w;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

struct PoolSetting {
  const char* name;
  Shape shape;  // NHWC
  Pool2dParams params;
};

inline OpCases max_pool2d_cases() {
  const PoolSetting settings[] = {
      {"stem", {2, 9, 11, 3}, pool(3, 3, 2, 2, 1, 1)},
      {"stem, larger", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1)},
      {"dilation", {1, 10, 9, 2}, pool(3, 3, 1, 2, 1, 1, 2, 2)},
      {"dilation, larger", {2, 13, 11, 4}, pool(3, 3, 1, 2, 1, 1, 2, 2)},
      {"rect", {1, 10, 13, 3}, pool(2, 3, 1, 2, 1, 1, 3, 1)},
      {"dilation rect", {1, 6, 7, 3}, pool(2, 3, 1, 2, 1, 0, 2, 1)},
      {"ceil", {1, 8, 7, 2}, pool(3, 3, 2, 2, 1, 1, 1, 1, true)},
      {"ceil, larger", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true)},
      {"ceil last window dropped", {1, 5, 8, 3}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"ceil stride 3", {2, 5, 8, 2}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"odd shape", {2, 7, 5, 13}, pool(3, 3, 2, 2, 1, 1)},
  };
  OpCases cases;
  uint64_t seed = 300;
  for (const PoolSetting& s : settings) {
    const Shape shape = s.shape;
    const Pool2dParams p = s.params;
    cases.push_back({std::string("max_pool2d ") + s.name,
                     [shape](Generator& g) { return std::vector<Tensor>{separated_leaf(shape, g)}; },
                     [p](const std::vector<Tensor>& in) { return max_pool2d(in[0], p); }, seed++});
  }
  return cases;
}

inline OpCases avg_pool2d_cases() {
  std::vector<PoolSetting> settings;
  for (bool include_pad : {true, false}) {
    for (bool ceil_mode : {false, true}) {
      settings.push_back({"3x3 stride 2 pad 1", {2, 8, 7, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, ceil_mode, include_pad)});
    }
  }
  const PoolSetting more[] = {
      {"include pad", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1)},
      {"exclude pad", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1, 1, 1, false, false)},
      {"rect", {1, 11, 14, 4}, pool(2, 5, 3, 2, 1, 2)},
      {"rect ceil exclude pad", {1, 10, 9, 2}, pool(2, 5, 3, 2, 1, 2, 1, 1, true, false)},
      {"ceil include pad", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true, true)},
      {"ceil exclude pad", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true, false)},
      {"ceil no pad", {1, 10, 9, 3}, pool(4, 4, 3, 3, 0, 0, 1, 1, true)},
      {"ceil last window", {1, 5, 8, 3}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"odd shape", {2, 7, 5, 13}, pool(3, 3, 2, 2, 1, 1, 1, 1, false, false)},
  };
  settings.insert(settings.end(), std::begin(more), std::end(more));
  OpCases cases;
  uint64_t seed = 320;
  for (const PoolSetting& s : settings) {
    const Shape shape = s.shape;
    const Pool2dParams p = s.params;
    cases.push_back({std::string("avg_pool2d ") + s.name + (p.ceil_mode ? ", ceil mode" : "") +
                         (p.count_include_pad ? ", count_include_pad" : ""),
                     [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                     [p](const std::vector<Tensor>& in) { return avg_pool2d(in[0], p); }, seed++});
  }
  return cases;
}

// The MiB/PLOP head's image pooling in evaluation: a window of the pooling size at stride 1, then
// replicate padding back to the input size; larger than the window in both axes and not.
inline OpCases mib_eval_pooling_cases() {
  struct Setting {
    Shape shape;
    int64_t kh, kw, top, bottom, left, right;
  };
  const Setting settings[] = {{{1, 34, 33, 2}, 32, 32, 15, 16, 15, 16}, {{2, 13, 21, 5}, 13, 21, 6, 6, 10, 10}};
  OpCases cases;
  uint64_t seed = 340;
  for (const Setting& s : settings) {
    const Shape shape = s.shape;
    cases.push_back({"MiB evaluation pooling " + shape_str(shape),
                     [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                     [s](const std::vector<Tensor>& in) {
                       return pad_replicate(avg_pool2d(in[0], pool(s.kh, s.kw, 1, 1)), s.top, s.bottom, s.left,
                                            s.right);
                     },
                     seed++});
  }
  return cases;
}

// Adaptive average pooling: PSPNet's bins (1, 2, 3, 6) on sizes they do not divide (overlapping
// windows), more outputs than inputs (repeated pixels), a divisible size and a rectangular one.
inline OpCases adaptive_avg_pool2d_cases() {
  struct Setting {
    const char* name;
    Shape shape;  // NHWC
    int64_t out_h, out_w;
  };
  const Setting settings[] = {
      {"bin 1", {2, 7, 9, 3}, 1, 1},
      {"bin 2, odd input", {2, 7, 9, 3}, 2, 2},
      {"bin 3", {1, 13, 11, 4}, 3, 3},
      {"bin 6", {1, 13, 11, 4}, 6, 6},
      {"more outputs than inputs", {2, 5, 4, 3}, 6, 7},
      {"divisible", {1, 8, 12, 2}, 4, 3},
      {"rectangular", {2, 10, 7, 5}, 3, 5},
  };
  OpCases cases;
  uint64_t seed = 360;
  for (const Setting& s : settings) {
    const Shape shape = s.shape;
    const int64_t out_h = s.out_h, out_w = s.out_w;
    cases.push_back({std::string("adaptive_avg_pool2d ") + s.name,
                     [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                     [out_h, out_w](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], out_h, out_w); },
                     seed++});
  }
  return cases;
}

inline OpCases global_avg_pool_cases() {
  return {{"global_avg_pool",
           [](Generator& g) {
             return std::vector<Tensor>{leaf({2, 5, 3, 4}, g)};
           },
           [](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, 350}};
}

}  // namespace strata::test

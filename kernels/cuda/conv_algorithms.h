// The cuDNN convolution algorithm cache of one device (DESIGN.md "Kernels": one algorithm per shape,
// chosen once and cached). The CudaContext owns one; kernels/cuda/conv2d.cpp fills it. CUDA-only
// (it names cuDNN's types): the engine's CUDA context and tests include it, ops do not.
//
// Key: the pass and everything cuDNN's choice depends on — (N,H,W,C) input, (K,R,S) filter, padding,
// stride, dilation, data type, layout and math type. Value: the algorithm, its workspace and how it
// was chosen. The policy (heuristics or benchmark, and the workspace limit) is fixed per cache, so it
// is not part of the key.
//
// Letters: N batch, H W input height/width, C input channels, K output channels, R S filter
// height/width.
// Thread-safe (one mutex); a std::map, so iteration and the chosen entries never depend on hashing.
#pragma once

#include <cudnn.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "kernels/common/conv2d.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

enum class ConvPass { forward, backward_data, backward_filter };

struct ConvAlgorithmKey {
  ConvPass pass = ConvPass::forward;
  int64_t N = 0, H = 0, W = 0, C = 0;
  int64_t K = 0, R = 0, S = 0;
  int64_t pad_h = 0, pad_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t layout = CUDNN_TENSOR_NHWC;
  cudnnMathType_t math = CUDNN_FMA_MATH;

  auto operator<=>(const ConvAlgorithmKey&) const = default;
};

// The cache key of one pass of a T convolution as kernels/cuda/conv2d.h's kernels use it (NHWC; FMA
// math for strict float, the default math type for TF32 float and for double). Defined in
// conv2d.cpp, next to those choices.
template <class T>
ConvAlgorithmKey conv2d_algorithm_key(const common::Conv2dShape& s, ConvPass pass,
                                      FloatMath float_math = FloatMath::strict);

struct ConvAlgorithm {
  int algo = 0;                // the pass's cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t value
  size_t workspace_bytes = 0;  // cudnnGet*WorkspaceSize for this algorithm
  cudnnMathType_t math = CUDNN_FMA_MATH;
  bool deterministic = true;
  bool benchmarked = false;    // chosen by cudnnFind*AlgorithmEx rather than cudnnGet*Algorithm_v7
};

// How algorithms are chosen: by cuDNN's heuristics (cudnnGet*Algorithm_v7, the default) or by
// running every candidate on the device (cudnnFind*AlgorithmEx, PyTorch's cudnn.benchmark). Either
// way the first successful algorithm whose workspace is at most workspace_limit bytes wins; with
// `deterministic` (PyTorch's cudnn.deterministic) only algorithms cuDNN reports as
// CUDNN_DETERMINISTIC qualify, so a run repeats bit for bit (backward-data ALGO_0 and
// backward-filter ALGO_0/ALGO_3 sum with atomics, in an order that changes from run to run).
struct ConvAlgorithmPolicy {
  bool benchmark = false;
  size_t workspace_limit = size_t{1} << 30;
  bool deterministic = false;
};

class ConvAlgorithmCache {
 public:
  struct Stats {
    int64_t hits = 0;     // lookups answered from the cache
    int64_t misses = 0;   // lookups that had to choose an algorithm
    int64_t entries = 0;  // keys cached now
  };

  explicit ConvAlgorithmCache(ConvAlgorithmPolicy policy = {}) : policy_(policy) {}
  ConvAlgorithmCache(const ConvAlgorithmCache&) = delete;
  ConvAlgorithmCache& operator=(const ConvAlgorithmCache&) = delete;

  const ConvAlgorithmPolicy& policy() const { return policy_; }

  // The cached choice for `key`, counted as a hit; nullopt (counted as a miss) when there is none.
  std::optional<ConvAlgorithm> lookup(const ConvAlgorithmKey& key);
  void insert(const ConvAlgorithmKey& key, const ConvAlgorithm& algorithm);
  // The cached choice without counting (for inspection and tests).
  std::optional<ConvAlgorithm> peek(const ConvAlgorithmKey& key) const;
  Stats stats() const;
  // Forgets every choice (e.g. after the device's free memory changed a lot); counters stay.
  void clear();

 private:
  ConvAlgorithmPolicy policy_;
  mutable std::mutex mutex_;
  std::map<ConvAlgorithmKey, ConvAlgorithm> entries_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace strata::kernels::cuda

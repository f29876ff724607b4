// Convolution through cuDNN's legacy API: every cuDNN call strata makes for convolutions is in this
// file, so the later move to the backend (graph) API stays local (reference/cudnn-notes.md §3: the
// legacy convolution functions are deprecated in cuDNN 9 but shipped and documented).
//
// Semantics (see conv2d.h): cuDNN's CUDNN_CROSS_CORRELATION mode is PyTorch's conv2d; NHWC tensor
// descriptors and an NHWC (= KRSC) filter descriptor describe our NHWC activations and OHWI
// weights without any transpose; alpha = 1, beta = 0 overwrite the output. The bias is added
// afterwards by kernels/cuda/elementwise.h's add_channel, as the CPU kernels add it after the GEMM,
// and the inference epilogue (bias, residual, activation) by one kernel of conv2d_epilogue.cu: the
// emulator implements cuDNN's plain convolution, not cudnnConvolutionBiasActivationForward, and a
// separate pass keeps the two builds one computation.
// The backend (kernels/cuda/backend.h) gives the cuDNN handle, the algorithm cache and scratch memory
// for the workspace.
//
// Precision: f32 data computes in float under CUDNN_FMA_MATH (strict fp32, never TF32) or, when the
// backend's float_math is tf32, under CUDNN_DEFAULT_MATH, which lets cuDNN pick TF32 tensor-core
// algorithms (any record math type but CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which may round float
// to half precision, qualifies); bf16 data (--precision bf16, engine/precision.h) is cuDNN's
// PSEUDO_BFLOAT16_CONFIG: bf16 tensors, float compute type, under CUDNN_DEFAULT_MATH so the tensor
// cores multiply bf16 and accumulate in float (any record math type but ALLOW_CONVERSION), and the
// float scaling factors cuDNN takes for every non-double type; f64 data
// computes in double under CUDNN_DEFAULT_MATH (TF32 applies to float only, so no math type lowers
// the precision of a double convolution), and cuDNN computes double NHWC convolutions only with its
// implicit-GEMM algorithms: forward IMPLICIT_GEMM and IMPLICIT_PRECOMP_GEMM, backward-data ALGO_0
// and ALGO_1, backward-filter ALGO_0, ALGO_1 and ALGO_3 (FFT and Winograd compute float and half
// only; the explicit GEMM needs NCHW). A double algorithm outside that list is skipped even when
// cuDNN reports it as supported.
//
// Algorithm choice (once per shape and data type, cached in the context's ConvAlgorithmCache):
//   heuristics (default): cudnnGet*Algorithm_v7 ranks the algorithms without running them; the
//     first record with status SUCCESS, a math type that keeps the data type's precision
//     (CUDNN_FMA_MATH for strict f32), an algorithm that computes the data type (all for f32, the list
//     above for f64) and a workspace (cudnnGet*WorkspaceSize) within the limit wins.
//   benchmark: cudnnFind*AlgorithmEx times every algorithm on our own buffers (the operands of the
//     call and a workspace from the caller's allocator, as large as the largest candidate within
//     the limit) and the same filter picks the fastest.
//   deterministic (either way): only algorithms cuDNN reports as deterministic qualify. Find writes the output; the
//   real call
//     overwrites it afterwards.
// An algorithm over the limit is skipped in favour of the next one that fits (Caffe #2197: the
// fastest algorithm's workspace can exhaust the device); none left is an error listing what every
// candidate answered.
//
// Letters: N batch, H W input height/width, C input channels, K output channels, R S filter
// height/width, P Q output height/width.
#include "kernels/cuda/conv2d.h"

#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_algorithms.h"
#include "kernels/cuda/elementwise.h"

namespace strata::kernels::cuda {

namespace {

constexpr cudnnTensorFormat_t kLayout = CUDNN_TENSOR_NHWC;

// What a convolution of T data asks of cuDNN (see the file comment).
struct ConvPrecision {
  cudnnDataType_t data;     // the tensors' and the filter's data type
  cudnnDataType_t compute;  // the convolution descriptor's compute (accumulation) type
  cudnnMathType_t math;     // the convolution descriptor's math type before an algorithm is chosen
  const char* name;
};

// cuDNN's alpha and beta: double for double data, float for every other type.
template <class T>
using ConvScale = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
constexpr ConvPrecision precision_of(FloatMath float_math);
template <>
constexpr ConvPrecision precision_of<float>(FloatMath float_math) {
  if (float_math == FloatMath::tf32) return {CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH, "tf32"};
  return {CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, "strict fp32"};
}
template <>
constexpr ConvPrecision precision_of<double>(FloatMath) {
  return {CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE, CUDNN_DEFAULT_MATH, "f64"};
}
template <>
constexpr ConvPrecision precision_of<bf16>(FloatMath) {
  return {CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH, "bf16 with f32 accumulation"};
}

// Whether an algorithm record's math type computes at the precision asked for: only FMA math for
// strict float (the others may round to TF32); for TF32 and bf16 anything but a conversion to
// half precision; any for double.
bool keeps_precision(const ConvPrecision& precision, cudnnMathType_t math) {
  if (precision.data == CUDNN_DATA_DOUBLE) return true;
  if (precision.math == CUDNN_FMA_MATH) return math == CUDNN_FMA_MATH;
  return math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

std::string tuple(std::initializer_list<int64_t> values) {
  std::string out = "(";
  for (int64_t v : values) out += (out.size() > 1 ? "," : "") + std::to_string(v);
  return out + ")";
}

std::string describe(const Conv2dShape& s) {
  return "x (N,H,W,C) = " + tuple({s.N, s.H, s.W, s.C}) + ", w (K,R,S,C) = " + tuple({s.K, s.R, s.S, s.C}) +
         ", stride " + tuple({s.stride_h, s.stride_w}) + ", padding " + tuple({s.pad_h, s.pad_w}) + ", dilation " +
         tuple({s.dilation_h, s.dilation_w});
}

// cuDNN's legacy descriptors take int dimensions and strides (the N stride of an NHWC tensor is
// H*W*C), so every tensor of the problem must have at most 2^31 - 1 elements.
bool product_fits_int(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t f : factors) {
    if (f < 0 || (f > 0 && product > INT_MAX / f)) return false;
    product *= f;
  }
  return true;
}

void check_fits_cudnn(const Conv2dShape& s) {
  bool fits = product_fits_int({s.N, s.H, s.W, s.C}) && product_fits_int({s.N, s.P, s.Q, s.K}) &&
              product_fits_int({s.K, s.R, s.S, s.C});
  for (int64_t v : {s.pad_h, s.pad_w, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w}) {
    fits = fits && product_fits_int({v});
  }
  if (!fits) {
    throw CudaError("conv2d on CUDA: " + describe(s) + " is too large for cuDNN's legacy API, whose descriptors " +
                    "take 32-bit ints and tensors of at most 2^31 - 1 elements");
  }
}

int as_int(int64_t v) { return static_cast<int>(v); }

void check_handle_stream(const Backend& backend) {
  cudaStream_t bound = nullptr;
  STRATA_CUDNN_CHECK(cudnnGetStream(backend.cudnn, &bound));
  if (bound != backend.stream.handle) {
    throw CudaError("conv2d on CUDA: the cuDNN handle is not bound to the compute stream, so the convolution "
                    "would run unordered with the other kernels");
  }
}

// cuDNN's workspace for one kernel call, from the backend's scratch: a buffer of at least the bytes
// asked for, reused by later requests of the call that fit in it (choosing an algorithm by
// benchmark, then running it).
class Workspace {
 public:
  explicit Workspace(Scratch& scratch) : scratch_(scratch) {}
  void* get(size_t bytes) {
    if (bytes > bytes_) {
      buffer_ = scratch_.bytes(bytes);
      bytes_ = bytes;
    }
    return bytes ? buffer_ : nullptr;
  }

 private:
  Scratch& scratch_;
  void* buffer_ = nullptr;
  size_t bytes_ = 0;
};

// Owners of cuDNN descriptors. Destroying a valid descriptor cannot fail, and a destructor could
// not report it anyway.
struct TensorDescriptor {
  cudnnTensorDescriptor_t handle = nullptr;
  TensorDescriptor() { STRATA_CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle)); }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(handle); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

struct FilterDescriptor {
  cudnnFilterDescriptor_t handle = nullptr;
  FilterDescriptor() { STRATA_CUDNN_CHECK(cudnnCreateFilterDescriptor(&handle)); }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(handle); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};

struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t handle = nullptr;
  ConvolutionDescriptor() { STRATA_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&handle)); }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(handle); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};

// The four descriptors of one convolution problem. cuDNN's dimension arguments are always in
// N,C,H,W order; the NHWC format gives the strides of our channels-last layout. Members are
// created before the body runs, so a failing Set destroys what exists.
struct ConvDescriptors {
  TensorDescriptor x;  // (N,H,W,C)
  FilterDescriptor w;  // (K,R,S,C)
  ConvolutionDescriptor conv;
  TensorDescriptor y;  // (N,P,Q,K)

  ConvDescriptors(const Conv2dShape& s, const ConvPrecision& precision) {
    const cudnnDataType_t type = precision.data;
    STRATA_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(x.handle, kLayout, type, as_int(s.N), as_int(s.C), as_int(s.H), as_int(s.W)));
    STRATA_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(w.handle, type, kLayout, as_int(s.K), as_int(s.C), as_int(s.R), as_int(s.S)));
    STRATA_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv.handle, as_int(s.pad_h), as_int(s.pad_w), as_int(s.stride_h), as_int(s.stride_w), as_int(s.dilation_h),
        as_int(s.dilation_w), CUDNN_CROSS_CORRELATION, precision.compute));
    STRATA_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.handle, precision.math));
    STRATA_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(y.handle, kLayout, type, as_int(s.N), as_int(s.K), as_int(s.P), as_int(s.Q)));
    int n = 0, k = 0, p = 0, q = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.handle, x.handle, w.handle, &n, &k, &p, &q));
    if (n != s.N || k != s.K || p != s.P || q != s.Q) {
      throw CudaError("conv2d on CUDA: cuDNN computes an output (N,K,P,Q) = " + tuple({n, k, p, q}) + " for " +
                      describe(s) + ", expected " + tuple({s.N, s.K, s.P, s.Q}));
    }
  }
};

// Pass traits: the pass's cuDNN types, its algorithm-query calls and the pass itself. A pass reads two
// operands a, b and writes out: forward (x, w) -> y, backward-data (w, dy) -> dx, backward-filter
// (x, dy) -> dw, in the order cuDNN's calls take them. A workspace-size query's status is returned
// rather than thrown: an algorithm cuDNN cannot size is skipped (and named in the error when nothing
// else works).
struct ForwardPass {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr ConvPass pass = ConvPass::forward;
  static constexpr const char* name = "forward";
  static bool computes_double(Algo algo) {
    return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  }
  static int max_count(cudnnHandle_t cudnn) {
    int count = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(cudnn, &count));
    return count;
  }
  static void heuristics(cudnnHandle_t cudnn, const ConvDescriptors& d, int requested, int* returned, Perf* perf) {
    STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn, d.x.handle, d.w.handle, d.conv.handle,
                                                              d.y.handle, requested, returned, perf));
  }
  static cudnnStatus_t workspace_size(cudnnHandle_t cudnn, const ConvDescriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(cudnn, d.x.handle, d.w.handle, d.conv.handle, d.y.handle, algo,
                                                   bytes);
  }
  static void find(cudnnHandle_t cudnn, const ConvDescriptors& d, const void* x, const void* w, void* y, int requested,
                   int* returned, Perf* perf, void* workspace, size_t bytes) {
    STRATA_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(cudnn, d.x.handle, x, d.w.handle, w, d.conv.handle,
                                                              d.y.handle, y, requested, returned, perf, workspace,
                                                              bytes));
  }
  static void run(cudnnHandle_t cudnn, const void* alpha, const ConvDescriptors& d, const void* x, const void* w,
                  Algo algo, void* workspace, size_t bytes, const void* beta, void* y) {
    STRATA_CUDNN_CHECK(cudnnConvolutionForward(cudnn, alpha, d.x.handle, x, d.w.handle, w, d.conv.handle, algo,
                                               workspace, bytes, beta, d.y.handle, y));
  }
};

struct BackwardDataPass {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr ConvPass pass = ConvPass::backward_data;
  static constexpr const char* name = "backward-data";
  static bool computes_double(Algo algo) {
    return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  }
  static int max_count(cudnnHandle_t cudnn) {
    int count = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnn, &count));
    return count;
  }
  static void heuristics(cudnnHandle_t cudnn, const ConvDescriptors& d, int requested, int* returned, Perf* perf) {
    STRATA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn, d.w.handle, d.y.handle, d.conv.handle,
                                                                   d.x.handle, requested, returned, perf));
  }
  static cudnnStatus_t workspace_size(cudnnHandle_t cudnn, const ConvDescriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn, d.w.handle, d.y.handle, d.conv.handle, d.x.handle,
                                                        algo, bytes);
  }
  static void find(cudnnHandle_t cudnn, const ConvDescriptors& d, const void* w, const void* dy, void* dx,
                   int requested, int* returned, Perf* perf, void* workspace, size_t bytes) {
    STRATA_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn, d.w.handle, w, d.y.handle, dy, d.conv.handle,
                                                                   d.x.handle, dx, requested, returned, perf, workspace,
                                                                   bytes));
  }
  static void run(cudnnHandle_t cudnn, const void* alpha, const ConvDescriptors& d, const void* w, const void* dy,
                  Algo algo, void* workspace, size_t bytes, const void* beta, void* dx) {
    STRATA_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn, alpha, d.w.handle, w, d.y.handle, dy, d.conv.handle, algo,
                                                    workspace, bytes, beta, d.x.handle, dx));
  }
};

struct BackwardFilterPass {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr ConvPass pass = ConvPass::backward_filter;
  static constexpr const char* name = "backward-filter";
  static bool computes_double(Algo algo) {
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
  static int max_count(cudnnHandle_t cudnn) {
    int count = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnn, &count));
    return count;
  }
  static void heuristics(cudnnHandle_t cudnn, const ConvDescriptors& d, int requested, int* returned, Perf* perf) {
    STRATA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn, d.x.handle, d.y.handle, d.conv.handle,
                                                                     d.w.handle, requested, returned, perf));
  }
  static cudnnStatus_t workspace_size(cudnnHandle_t cudnn, const ConvDescriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn, d.x.handle, d.y.handle, d.conv.handle, d.w.handle,
                                                          algo, bytes);
  }
  static void find(cudnnHandle_t cudnn, const ConvDescriptors& d, const void* x, const void* dy, void* dw,
                   int requested, int* returned, Perf* perf, void* workspace, size_t bytes) {
    STRATA_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn, d.x.handle, x, d.y.handle, dy,
                                                                     d.conv.handle, d.w.handle, dw, requested, returned,
                                                                     perf, workspace, bytes));
  }
  static void run(cudnnHandle_t cudnn, const void* alpha, const ConvDescriptors& d, const void* x, const void* dy,
                  Algo algo, void* workspace, size_t bytes, const void* beta, void* dw) {
    STRATA_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn, alpha, d.x.handle, x, d.y.handle, dy, d.conv.handle, algo,
                                                      workspace, bytes, beta, d.w.handle, dw));
  }
};

// Chooses the pass's algorithm by the policy in the file comment; benchmarking runs the pass's
// cudnnFind*AlgorithmEx on the call's operands a, b and out.
template <class Pass>
ConvAlgorithm choose_algorithm(cudnnHandle_t cudnn, const ConvDescriptors& d, const Conv2dShape& s,
                               const ConvPrecision& precision, const ConvAlgorithmPolicy& policy, Workspace& workspace,
                               const void* a, const void* b, void* out) {
  using Perf = typename Pass::Perf;
  const int requested = Pass::max_count(cudnn);
  std::vector<Perf> perf(static_cast<size_t>(std::max(requested, 1)));
  int returned = 0;
  Pass::heuristics(cudnn, d, requested, &returned, perf.data());
  if (policy.benchmark) {
    size_t bytes = 0;
    for (int i = 0; i < returned; ++i) {
      size_t needed = 0;
      const Perf& p = perf[static_cast<size_t>(i)];
      if (p.status == CUDNN_STATUS_SUCCESS && Pass::workspace_size(cudnn, d, p.algo, &needed) == CUDNN_STATUS_SUCCESS &&
          needed <= policy.workspace_limit) {
        bytes = std::max(bytes, needed);
      }
    }
    Pass::find(cudnn, d, a, b, out, requested, &returned, perf.data(), workspace.get(bytes), bytes);
  }
  std::string answers;
  auto note = [&](int algo, const std::string& why) {
    answers += (answers.empty() ? "" : "; ") + std::string("algorithm ") + std::to_string(algo) + ": " + why;
  };
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    const int algo = static_cast<int>(p.algo);
    if (p.status != CUDNN_STATUS_SUCCESS) {
      note(algo, cudnnGetErrorString(p.status));
      continue;
    }
    if (!keeps_precision(precision, p.mathType)) {
      note(algo, "math type " + std::to_string(static_cast<int>(p.mathType)) + " is not " + precision.name);
      continue;
    }
    if (precision.data == CUDNN_DATA_DOUBLE && !Pass::computes_double(p.algo)) {
      note(algo, "not one of cuDNN's f64 algorithms");
      continue;
    }
    if (policy.deterministic && p.determinism != CUDNN_DETERMINISTIC) {
      note(algo, "not deterministic");
      continue;
    }
    size_t bytes = 0;
    if (cudnnStatus_t status = Pass::workspace_size(cudnn, d, p.algo, &bytes); status != CUDNN_STATUS_SUCCESS) {
      note(algo, std::string("workspace size query failed: ") + cudnnGetErrorString(status));
      continue;
    }
    if (bytes > policy.workspace_limit) {
      note(algo, "workspace of " + std::to_string(bytes) + " bytes");
      continue;
    }
    return ConvAlgorithm{algo, bytes, p.mathType, p.determinism == CUDNN_DETERMINISTIC, policy.benchmark};
  }
  throw CudaError(std::string("conv2d on CUDA: no cuDNN ") + Pass::name + " algorithm (" +
                  (policy.benchmark ? "benchmarked" : "heuristics") + ") computes " + describe(s) +
                  " in " + precision.name + (policy.deterministic ? " deterministically" : "") +
                  " within the workspace limit of " +
                  std::to_string(policy.workspace_limit) + " bytes (" +
                  (answers.empty() ? "cuDNN returned no candidates" : answers) + ")");
}

// One pass on the backend, out = pass(a, b): the descriptors, the pass's algorithm for this shape
// (cached, or chosen on the first call), the convolution descriptor given the algorithm's math type
// (cuDNN runs an algorithm with the descriptor's), then the pass with the algorithm's workspace.
template <class T, class Pass>
void run_pass(const Conv2dShape& s, const Backend& backend, const T* a, const T* b, T* out) {
  const ConvPrecision precision = precision_of<T>(backend.float_math);
  ConvDescriptors d(s, precision);
  Workspace workspace(*backend.scratch);
  ConvAlgorithmCache& algorithms = *backend.conv_algorithms;
  const ConvAlgorithmKey key = conv2d_algorithm_key<T>(s, Pass::pass, backend.float_math);
  std::optional<ConvAlgorithm> cached = algorithms.lookup(key);
  ConvAlgorithm chosen =
      cached ? *cached
             : choose_algorithm<Pass>(backend.cudnn, d, s, precision, algorithms.policy(), workspace, a, b, out);
  if (!cached) algorithms.insert(key, chosen);
  STRATA_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.handle, chosen.math));
  const ConvScale<T> alpha = 1, beta = 0;
  Pass::run(backend.cudnn, &alpha, d, a, b, static_cast<typename Pass::Algo>(chosen.algo),
            workspace.get(chosen.workspace_bytes), chosen.workspace_bytes, &beta, out);
}

// cuDNN rejects zero-sized dimensions; a convolution with an empty sum (C = 0, or N = 0 / K = 0 for
// the filter gradient) writes zeros, and an empty output needs nothing.
template <class T>
void fill_zero(T* out, int64_t elements, const Backend& backend) {
  if (elements > 0) {
    STRATA_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * static_cast<size_t>(elements), backend.stream.handle));
  }
}

}  // namespace

template <class T>
ConvAlgorithmKey conv2d_algorithm_key(const Conv2dShape& s, ConvPass pass, FloatMath float_math) {
  const ConvPrecision precision = precision_of<T>(float_math);
  ConvAlgorithmKey key;
  key.pass = pass;
  key.N = s.N;
  key.H = s.H;
  key.W = s.W;
  key.C = s.C;
  key.K = s.K;
  key.R = s.R;
  key.S = s.S;
  key.pad_h = s.pad_h;
  key.pad_w = s.pad_w;
  key.stride_h = s.stride_h;
  key.stride_w = s.stride_w;
  key.dilation_h = s.dilation_h;
  key.dilation_w = s.dilation_w;
  key.dtype = precision.data;
  key.layout = kLayout;
  key.math = precision.math;
  return key;
}

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s, const Backend& backend) {
  check_fits_cudnn(s);
  check_handle_stream(backend);
  const int64_t rows = s.N * s.P * s.Q;
  if (rows == 0 || s.K == 0) return;
  if (s.C == 0) {
    fill_zero(y, rows * s.K, backend);
  } else {
    run_pass<T, ForwardPass>(s, backend, x, w, y);
  }
  if (!bias) return;
  if constexpr (std::is_same_v<T, bf16>) {
    throw CudaError(
        "conv2d on CUDA: a bf16 convolution takes no bias yet (the bias add has no bf16 kernel); "
        "add the bias after the convolution");
  } else {
    add_channel(y, y, bias, rows, s.K, backend);
  }
}

template <class T>
void conv2d_forward_epilogue(T* y, const T* x, const T* w, const ConvEpilogue<T>& epilogue, const Conv2dShape& s,
                             const Backend& backend) {
  conv2d_forward(y, x, w, static_cast<const T*>(nullptr), s, backend);
  conv2d_epilogue(y, epilogue, s, backend);
}

template <class T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s, const Backend& backend) {
  check_fits_cudnn(s);
  check_handle_stream(backend);
  if (s.N * s.H * s.W * s.C == 0) return;
  if (s.K == 0) {
    fill_zero(dx, s.N * s.H * s.W * s.C, backend);
    return;
  }
  run_pass<T, BackwardDataPass>(s, backend, w, dy, dx);
}

template <class T>
void conv2d_backward_filter(T* dw, const T* dy, const T* x, const Conv2dShape& s, const Backend& backend) {
  check_fits_cudnn(s);
  check_handle_stream(backend);
  if (s.K * s.R * s.S * s.C == 0) return;
  if (s.N == 0) {
    fill_zero(dw, s.K * s.R * s.S * s.C, backend);
    return;
  }
  run_pass<T, BackwardFilterPass>(s, backend, x, dy, dw);
}

#define STRATA_INSTANTIATE(T)                                                                                  \
  template ConvAlgorithmKey conv2d_algorithm_key<T>(const Conv2dShape&, ConvPass, FloatMath);                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&, const Backend&);       \
  template void conv2d_forward_epilogue<T>(T*, const T*, const T*, const ConvEpilogue<T>&, const Conv2dShape&, \
                                           const Backend&);                                                    \
  template void conv2d_backward_data<T>(T*, const T*, const T*, const Conv2dShape&, const Backend&);           \
  template void conv2d_backward_filter<T>(T*, const T*, const T*, const Conv2dShape&, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

// bf16: the convolution passes (no epilogue kernel in bf16 yet).
template ConvAlgorithmKey conv2d_algorithm_key<bf16>(const Conv2dShape&, ConvPass, FloatMath);
template void conv2d_forward<bf16>(bf16*, const bf16*, const bf16*, const bf16*, const Conv2dShape&, const Backend&);
template void conv2d_backward_data<bf16>(bf16*, const bf16*, const bf16*, const Conv2dShape&, const Backend&);
template void conv2d_backward_filter<bf16>(bf16*, const bf16*, const bf16*, const Conv2dShape&, const Backend&);

}  // namespace strata::kernels::cuda

// Compile-time conformance of the emulated API: every emulated function exists with exactly the
// signature of the CUDA 13.0 / cuBLAS 13.1 / cuDNN 9.19 headers, and every enumerator the emulator
// declares has the real numeric value. The same file is compiled against the emulation headers and,
// when the CUDA toolkit is installed, against the real headers (target cudaemu_conformance_real),
// so a declaration that drifts from the toolkit breaks the build.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <type_traits>

#define CHECK_SIGNATURE(function, type) \
    [[maybe_unused]] static const auto function##_conforms = static_cast<type>(&function)

namespace runtime_signatures {
using E = cudaError_t;
CHECK_SIGNATURE(cudaGetLastError, E (*)());
CHECK_SIGNATURE(cudaPeekAtLastError, E (*)());
CHECK_SIGNATURE(cudaGetErrorName, const char* (*)(cudaError_t));
CHECK_SIGNATURE(cudaGetErrorString, const char* (*)(cudaError_t));
CHECK_SIGNATURE(cudaDriverGetVersion, E (*)(int*));
CHECK_SIGNATURE(cudaRuntimeGetVersion, E (*)(int*));
CHECK_SIGNATURE(cudaGetDeviceCount, E (*)(int*));
CHECK_SIGNATURE(cudaSetDevice, E (*)(int));
CHECK_SIGNATURE(cudaGetDevice, E (*)(int*));
CHECK_SIGNATURE(cudaGetDeviceProperties, E (*)(cudaDeviceProp*, int));
CHECK_SIGNATURE(cudaDeviceGetAttribute, E (*)(int*, cudaDeviceAttr, int));
CHECK_SIGNATURE(cudaDeviceSynchronize, E (*)());
CHECK_SIGNATURE(cudaMalloc, E (*)(void**, size_t));
CHECK_SIGNATURE(cudaFree, E (*)(void*));
CHECK_SIGNATURE(cudaMallocHost, E (*)(void**, size_t));
CHECK_SIGNATURE(cudaHostAlloc, E (*)(void**, size_t, unsigned int));
CHECK_SIGNATURE(cudaFreeHost, E (*)(void*));
CHECK_SIGNATURE(cudaMemGetInfo, E (*)(size_t*, size_t*));
CHECK_SIGNATURE(cudaPointerGetAttributes, E (*)(cudaPointerAttributes*, const void*));
CHECK_SIGNATURE(cudaMemcpy, E (*)(void*, const void*, size_t, cudaMemcpyKind));
CHECK_SIGNATURE(cudaMemcpyAsync, E (*)(void*, const void*, size_t, cudaMemcpyKind, cudaStream_t));
CHECK_SIGNATURE(cudaMemset, E (*)(void*, int, size_t));
CHECK_SIGNATURE(cudaMemsetAsync, E (*)(void*, int, size_t, cudaStream_t));
CHECK_SIGNATURE(cudaMemcpyToSymbol, E (*)(const void*, const void*, size_t, size_t, cudaMemcpyKind));
CHECK_SIGNATURE(cudaStreamCreate, E (*)(cudaStream_t*));
CHECK_SIGNATURE(cudaStreamCreateWithFlags, E (*)(cudaStream_t*, unsigned int));
CHECK_SIGNATURE(cudaStreamDestroy, E (*)(cudaStream_t));
CHECK_SIGNATURE(cudaStreamSynchronize, E (*)(cudaStream_t));
CHECK_SIGNATURE(cudaStreamWaitEvent, E (*)(cudaStream_t, cudaEvent_t, unsigned int));
CHECK_SIGNATURE(cudaStreamQuery, E (*)(cudaStream_t));
CHECK_SIGNATURE(cudaStreamBeginCapture, E (*)(cudaStream_t, cudaStreamCaptureMode));
CHECK_SIGNATURE(cudaStreamEndCapture, E (*)(cudaStream_t, cudaGraph_t*));
CHECK_SIGNATURE(cudaStreamIsCapturing, E (*)(cudaStream_t, cudaStreamCaptureStatus*));
CHECK_SIGNATURE(cudaGraphInstantiate, E (*)(cudaGraphExec_t*, cudaGraph_t, unsigned long long));
CHECK_SIGNATURE(cudaGraphLaunch, E (*)(cudaGraphExec_t, cudaStream_t));
CHECK_SIGNATURE(cudaGraphExecDestroy, E (*)(cudaGraphExec_t));
CHECK_SIGNATURE(cudaGraphDestroy, E (*)(cudaGraph_t));
CHECK_SIGNATURE(cudaEventCreate, E (*)(cudaEvent_t*));
CHECK_SIGNATURE(cudaEventCreateWithFlags, E (*)(cudaEvent_t*, unsigned int));
CHECK_SIGNATURE(cudaEventRecord, E (*)(cudaEvent_t, cudaStream_t));
CHECK_SIGNATURE(cudaEventQuery, E (*)(cudaEvent_t));
CHECK_SIGNATURE(cudaEventSynchronize, E (*)(cudaEvent_t));
CHECK_SIGNATURE(cudaEventElapsedTime, E (*)(float*, cudaEvent_t, cudaEvent_t));
CHECK_SIGNATURE(cudaEventDestroy, E (*)(cudaEvent_t));
CHECK_SIGNATURE(cudaFuncSetAttribute, E (*)(const void*, cudaFuncAttribute, int));
}  // namespace runtime_signatures

// The C++ overloads of cuda_runtime.h.
[[maybe_unused]] static cudaError_t use_template_overloads() {
    float* device = nullptr;
    double* pinned = nullptr;
    cudaEvent_t event = nullptr;
    cudaError_t e = cudaMalloc(&device, 16);
    e = cudaMallocHost(&pinned, 16);
    e = cudaMallocHost(&pinned, 16, cudaHostAllocDefault);
    e = cudaHostAlloc(&pinned, 16, cudaHostAllocPortable);
    e = cudaEventCreate(&event, cudaEventDisableTiming);
    return e;
}

static_assert(cudaSuccess == 0 && cudaErrorInvalidValue == 1 && cudaErrorMemoryAllocation == 2 &&
              cudaErrorInitializationError == 3 && cudaErrorCudartUnloading == 4 && cudaErrorInvalidConfiguration == 9 &&
              cudaErrorInvalidPitchValue == 12 && cudaErrorInvalidSymbol == 13 && cudaErrorInvalidHostPointer == 16 &&
              cudaErrorInvalidDevicePointer == 17 && cudaErrorInvalidMemcpyDirection == 21 &&
              cudaErrorMissingConfiguration == 52 && cudaErrorInvalidDeviceFunction == 98 && cudaErrorNoDevice == 100 &&
              cudaErrorInvalidDevice == 101 && cudaErrorNoKernelImageForDevice == 209 &&
              cudaErrorInvalidResourceHandle == 400 && cudaErrorIllegalState == 401 && cudaErrorNotReady == 600 &&
              cudaErrorIllegalAddress == 700 && cudaErrorLaunchOutOfResources == 701 && cudaErrorLaunchTimeout == 702 &&
              cudaErrorAssert == 710 && cudaErrorHardwareStackError == 714 && cudaErrorIllegalInstruction == 715 &&
              cudaErrorMisalignedAddress == 716 && cudaErrorLaunchFailure == 719 && cudaErrorNotPermitted == 800 &&
              cudaErrorNotSupported == 801 && cudaErrorStreamCaptureUnsupported == 900 && cudaErrorUnknown == 999);
static_assert(cudaErrorStreamCaptureInvalidated == 901 && cudaErrorStreamCaptureMerge == 902 &&
              cudaErrorStreamCaptureUnmatched == 903 && cudaErrorStreamCaptureUnjoined == 904 &&
              cudaErrorStreamCaptureIsolation == 905 && cudaErrorStreamCaptureImplicit == 906 &&
              cudaErrorCapturedEvent == 907 && cudaErrorStreamCaptureWrongThread == 908);
static_assert(cudaStreamCaptureStatusNone == 0 && cudaStreamCaptureStatusActive == 1 &&
              cudaStreamCaptureStatusInvalidated == 2);
static_assert(cudaStreamCaptureModeGlobal == 0 && cudaStreamCaptureModeThreadLocal == 1 &&
              cudaStreamCaptureModeRelaxed == 2);
static_assert(cudaMemcpyHostToHost == 0 && cudaMemcpyHostToDevice == 1 && cudaMemcpyDeviceToHost == 2 &&
              cudaMemcpyDeviceToDevice == 3 && cudaMemcpyDefault == 4);
static_assert(cudaMemoryTypeUnregistered == 0 && cudaMemoryTypeHost == 1 && cudaMemoryTypeDevice == 2 &&
              cudaMemoryTypeManaged == 3);
static_assert(cudaFuncAttributeMaxDynamicSharedMemorySize == 8 && cudaFuncAttributePreferredSharedMemoryCarveout == 9);
static_assert(cudaDevAttrMaxThreadsPerBlock == 1 && cudaDevAttrMaxBlockDimX == 2 && cudaDevAttrMaxBlockDimY == 3 &&
              cudaDevAttrMaxBlockDimZ == 4 && cudaDevAttrMaxGridDimX == 5 && cudaDevAttrMaxGridDimY == 6 &&
              cudaDevAttrMaxGridDimZ == 7 && cudaDevAttrMaxSharedMemoryPerBlock == 8 && cudaDevAttrWarpSize == 10 &&
              cudaDevAttrMultiProcessorCount == 16 && cudaDevAttrL2CacheSize == 38 &&
              cudaDevAttrMaxThreadsPerMultiProcessor == 39 && cudaDevAttrComputeCapabilityMajor == 75 &&
              cudaDevAttrComputeCapabilityMinor == 76 && cudaDevAttrMaxSharedMemoryPerMultiprocessor == 81 &&
              cudaDevAttrMaxSharedMemoryPerBlockOptin == 97 && cudaDevAttrClockRate == 13 &&
              cudaDevAttrMemoryClockRate == 36 && cudaDevAttrGlobalMemoryBusWidth == 37);
static_assert(cudaHostAllocDefault == 0 && cudaHostAllocPortable == 1 && cudaHostAllocMapped == 2 &&
              cudaHostAllocWriteCombined == 4 && cudaStreamDefault == 0 && cudaStreamNonBlocking == 1 &&
              cudaEventDefault == 0 && cudaEventBlockingSync == 1 && cudaEventDisableTiming == 2 &&
              cudaEventInterprocess == 4);
static_assert(CUDART_VERSION == 13000);
static_assert(std::is_same_v<decltype(cudaDeviceProp::name), char[256]> &&
              std::is_same_v<decltype(cudaDeviceProp::totalGlobalMem), size_t> &&
              std::is_same_v<decltype(cudaDeviceProp::sharedMemPerBlock), size_t> &&
              std::is_same_v<decltype(cudaDeviceProp::sharedMemPerBlockOptin), size_t> &&
              std::is_same_v<decltype(cudaDeviceProp::sharedMemPerMultiprocessor), size_t> &&
              std::is_same_v<decltype(cudaDeviceProp::warpSize), int> &&
              std::is_same_v<decltype(cudaDeviceProp::maxThreadsPerBlock), int> &&
              std::is_same_v<decltype(cudaDeviceProp::maxThreadsDim), int[3]> &&
              std::is_same_v<decltype(cudaDeviceProp::maxGridSize), int[3]> &&
              std::is_same_v<decltype(cudaDeviceProp::major), int> && std::is_same_v<decltype(cudaDeviceProp::minor), int> &&
              std::is_same_v<decltype(cudaDeviceProp::multiProcessorCount), int> &&
              std::is_same_v<decltype(cudaDeviceProp::l2CacheSize), int> &&
              std::is_same_v<decltype(cudaDeviceProp::maxThreadsPerMultiProcessor), int> &&
              std::is_same_v<decltype(cudaDeviceProp::maxBlocksPerMultiProcessor), int>);
static_assert(sizeof(dim3) == 12 && sizeof(uint3) == 12 && alignof(float2) == 8 && alignof(float4) == 16 &&
              alignof(int2) == 8 && alignof(int4) == 16 && alignof(double2) == 16 && sizeof(__half) == 2 &&
              sizeof(__nv_bfloat16) == 2 && sizeof(__half2) == 4 && sizeof(__nv_bfloat162) == 4);

namespace half_signatures {
CHECK_SIGNATURE(__float2half, __half (*)(float));
CHECK_SIGNATURE(__float2half_rn, __half (*)(float));
CHECK_SIGNATURE(__half2float, float (*)(__half));
CHECK_SIGNATURE(__float2bfloat16, __nv_bfloat16 (*)(float));
CHECK_SIGNATURE(__float2bfloat16_rn, __nv_bfloat16 (*)(float));
CHECK_SIGNATURE(__bfloat162float, float (*)(__nv_bfloat16));
}  // namespace half_signatures

namespace cublas_signatures {
using S = cublasStatus_t;
using H = cublasHandle_t;
using Op = cublasOperation_t;
CHECK_SIGNATURE(cublasCreate, S (*)(H*));
CHECK_SIGNATURE(cublasDestroy, S (*)(H));
CHECK_SIGNATURE(cublasGetVersion, S (*)(H, int*));
CHECK_SIGNATURE(cublasSetWorkspace, S (*)(H, void*, size_t));
CHECK_SIGNATURE(cublasSetStream, S (*)(H, cudaStream_t));
CHECK_SIGNATURE(cublasGetStream, S (*)(H, cudaStream_t*));
CHECK_SIGNATURE(cublasGetPointerMode, S (*)(H, cublasPointerMode_t*));
CHECK_SIGNATURE(cublasSetPointerMode, S (*)(H, cublasPointerMode_t));
CHECK_SIGNATURE(cublasGetMathMode, S (*)(H, cublasMath_t*));
CHECK_SIGNATURE(cublasSetMathMode, S (*)(H, cublasMath_t));
CHECK_SIGNATURE(cublasGetStatusName, const char* (*)(S));
CHECK_SIGNATURE(cublasGetStatusString, const char* (*)(S));
CHECK_SIGNATURE(cublasSgemm, S (*)(H, Op, Op, int, int, int, const float*, const float*, int, const float*, int,
                                   const float*, float*, int));
CHECK_SIGNATURE(cublasDgemm, S (*)(H, Op, Op, int, int, int, const double*, const double*, int, const double*, int,
                                   const double*, double*, int));
CHECK_SIGNATURE(cublasGemmEx, S (*)(H, Op, Op, int, int, int, const void*, const void*, cudaDataType, int, const void*,
                                    cudaDataType, int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                                    cublasGemmAlgo_t));
CHECK_SIGNATURE(cublasSgemmStridedBatched, S (*)(H, Op, Op, int, int, int, const float*, const float*, int, long long,
                                                 const float*, int, long long, const float*, float*, int, long long, int));
CHECK_SIGNATURE(cublasGemmStridedBatchedEx,
                S (*)(H, Op, Op, int, int, int, const void*, const void*, cudaDataType, int, long long, const void*,
                      cudaDataType, int, long long, const void*, void*, cudaDataType, int, long long, int,
                      cublasComputeType_t, cublasGemmAlgo_t));
}  // namespace cublas_signatures

static_assert(CUBLAS_STATUS_SUCCESS == 0 && CUBLAS_STATUS_NOT_INITIALIZED == 1 && CUBLAS_STATUS_ALLOC_FAILED == 3 &&
              CUBLAS_STATUS_INVALID_VALUE == 7 && CUBLAS_STATUS_ARCH_MISMATCH == 8 && CUBLAS_STATUS_MAPPING_ERROR == 11 &&
              CUBLAS_STATUS_EXECUTION_FAILED == 13 && CUBLAS_STATUS_INTERNAL_ERROR == 14 &&
              CUBLAS_STATUS_NOT_SUPPORTED == 15 && CUBLAS_STATUS_LICENSE_ERROR == 16);
static_assert(CUBLAS_OP_N == 0 && CUBLAS_OP_T == 1 && CUBLAS_OP_C == 2 && CUBLAS_OP_CONJG == 3);
static_assert(CUBLAS_POINTER_MODE_HOST == 0 && CUBLAS_POINTER_MODE_DEVICE == 1);
static_assert(CUBLAS_DEFAULT_MATH == 0 && CUBLAS_TENSOR_OP_MATH == 1 && CUBLAS_PEDANTIC_MATH == 2 &&
              CUBLAS_TF32_TENSOR_OP_MATH == 3 && CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION == 16);
static_assert(CUBLAS_COMPUTE_16F == 64 && CUBLAS_COMPUTE_16F_PEDANTIC == 65 && CUBLAS_COMPUTE_32F == 68 &&
              CUBLAS_COMPUTE_32F_PEDANTIC == 69 && CUBLAS_COMPUTE_32F_FAST_16F == 74 &&
              CUBLAS_COMPUTE_32F_FAST_16BF == 75 && CUBLAS_COMPUTE_32F_FAST_TF32 == 77 && CUBLAS_COMPUTE_64F == 70 &&
              CUBLAS_COMPUTE_64F_PEDANTIC == 71 && CUBLAS_COMPUTE_32I == 72 && CUBLAS_COMPUTE_32I_PEDANTIC == 73);
static_assert(CUBLAS_GEMM_DEFAULT == -1 && CUBLAS_GEMM_ALGO0 == 0 && CUBLAS_GEMM_ALGO23 == 23 &&
              CUBLAS_GEMM_DEFAULT_TENSOR_OP == 99 && CUBLAS_GEMM_ALGO0_TENSOR_OP == 100 &&
              CUBLAS_GEMM_ALGO15_TENSOR_OP == 115);
static_assert(CUDA_R_16F == 2 && CUDA_R_16BF == 14 && CUDA_R_32F == 0 && CUDA_R_64F == 1 && CUDA_C_32F == 4 &&
              CUDA_C_64F == 5 && CUDA_R_8I == 3 && CUDA_R_32I == 10);
static_assert(CUBLAS_VERSION == 130100);

namespace cudnn_signatures {
using S = cudnnStatus_t;
using H = cudnnHandle_t;
using T = cudnnTensorDescriptor_t;
using F = cudnnFilterDescriptor_t;
using C = cudnnConvolutionDescriptor_t;
CHECK_SIGNATURE(cudnnGetVersion, size_t (*)());
CHECK_SIGNATURE(cudnnGetErrorString, const char* (*)(S));
CHECK_SIGNATURE(cudnnCreate, S (*)(H*));
CHECK_SIGNATURE(cudnnDestroy, S (*)(H));
CHECK_SIGNATURE(cudnnSetStream, S (*)(H, cudaStream_t));
CHECK_SIGNATURE(cudnnGetStream, S (*)(H, cudaStream_t*));
CHECK_SIGNATURE(cudnnCreateTensorDescriptor, S (*)(T*));
CHECK_SIGNATURE(cudnnSetTensor4dDescriptor, S (*)(T, cudnnTensorFormat_t, cudnnDataType_t, int, int, int, int));
CHECK_SIGNATURE(cudnnSetTensor4dDescriptorEx, S (*)(T, cudnnDataType_t, int, int, int, int, int, int, int, int));
CHECK_SIGNATURE(cudnnGetTensor4dDescriptor,
                S (*)(const T, cudnnDataType_t*, int*, int*, int*, int*, int*, int*, int*, int*));
CHECK_SIGNATURE(cudnnSetTensorNdDescriptor, S (*)(T, cudnnDataType_t, int, const int[], const int[]));
CHECK_SIGNATURE(cudnnGetTensorNdDescriptor, S (*)(const T, int, cudnnDataType_t*, int*, int[], int[]));
CHECK_SIGNATURE(cudnnGetTensorSizeInBytes, S (*)(const T, size_t*));
CHECK_SIGNATURE(cudnnDestroyTensorDescriptor, S (*)(T));
CHECK_SIGNATURE(cudnnAddTensor, S (*)(H, const void*, const T, const void*, const void*, const T, void*));
CHECK_SIGNATURE(cudnnSetTensor, S (*)(H, const T, void*, const void*));
CHECK_SIGNATURE(cudnnScaleTensor, S (*)(H, const T, void*, const void*));
CHECK_SIGNATURE(cudnnCreateFilterDescriptor, S (*)(F*));
CHECK_SIGNATURE(cudnnSetFilter4dDescriptor, S (*)(F, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int));
CHECK_SIGNATURE(cudnnGetFilter4dDescriptor,
                S (*)(const F, cudnnDataType_t*, cudnnTensorFormat_t*, int*, int*, int*, int*));
CHECK_SIGNATURE(cudnnSetFilterNdDescriptor, S (*)(F, cudnnDataType_t, cudnnTensorFormat_t, int, const int[]));
CHECK_SIGNATURE(cudnnDestroyFilterDescriptor, S (*)(F));
CHECK_SIGNATURE(cudnnCreateConvolutionDescriptor, S (*)(C*));
CHECK_SIGNATURE(cudnnDestroyConvolutionDescriptor, S (*)(C));
CHECK_SIGNATURE(cudnnSetConvolutionMathType, S (*)(C, cudnnMathType_t));
CHECK_SIGNATURE(cudnnGetConvolutionMathType, S (*)(C, cudnnMathType_t*));
CHECK_SIGNATURE(cudnnSetConvolutionGroupCount, S (*)(C, int));
CHECK_SIGNATURE(cudnnGetConvolutionGroupCount, S (*)(C, int*));
CHECK_SIGNATURE(cudnnSetConvolution2dDescriptor,
                S (*)(C, int, int, int, int, int, int, cudnnConvolutionMode_t, cudnnDataType_t));
CHECK_SIGNATURE(cudnnGetConvolution2dDescriptor,
                S (*)(const C, int*, int*, int*, int*, int*, int*, cudnnConvolutionMode_t*, cudnnDataType_t*));
CHECK_SIGNATURE(cudnnGetConvolution2dForwardOutputDim, S (*)(const C, const T, const F, int*, int*, int*, int*));
CHECK_SIGNATURE(cudnnGetConvolutionNdForwardOutputDim, S (*)(const C, const T, const F, int, int[]));
CHECK_SIGNATURE(cudnnGetConvolutionForwardAlgorithmMaxCount, S (*)(H, int*));
CHECK_SIGNATURE(cudnnGetConvolutionForwardAlgorithm_v7,
                S (*)(H, const T, const F, const C, const T, const int, int*, cudnnConvolutionFwdAlgoPerf_t*));
CHECK_SIGNATURE(cudnnFindConvolutionForwardAlgorithmEx,
                S (*)(H, const T, const void*, const F, const void*, const C, const T, void*, const int, int*,
                      cudnnConvolutionFwdAlgoPerf_t*, void*, size_t));
CHECK_SIGNATURE(cudnnGetConvolutionForwardWorkspaceSize,
                S (*)(H, const T, const F, const C, const T, cudnnConvolutionFwdAlgo_t, size_t*));
CHECK_SIGNATURE(cudnnConvolutionForward, S (*)(H, const void*, const T, const void*, const F, const void*, const C,
                                               cudnnConvolutionFwdAlgo_t, void*, size_t, const void*, const T, void*));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardDataAlgorithmMaxCount, S (*)(H, int*));
CHECK_SIGNATURE(cudnnFindConvolutionBackwardDataAlgorithmEx,
                S (*)(H, const F, const void*, const T, const void*, const C, const T, void*, const int, int*,
                      cudnnConvolutionBwdDataAlgoPerf_t*, void*, size_t));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardDataAlgorithm_v7,
                S (*)(H, const F, const T, const C, const T, const int, int*, cudnnConvolutionBwdDataAlgoPerf_t*));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardDataWorkspaceSize,
                S (*)(H, const F, const T, const C, const T, cudnnConvolutionBwdDataAlgo_t, size_t*));
CHECK_SIGNATURE(cudnnConvolutionBackwardData,
                S (*)(H, const void*, const F, const void*, const T, const void*, const C, cudnnConvolutionBwdDataAlgo_t,
                      void*, size_t, const void*, const T, void*));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, S (*)(H, int*));
CHECK_SIGNATURE(cudnnFindConvolutionBackwardFilterAlgorithmEx,
                S (*)(H, const T, const void*, const T, const void*, const C, const F, void*, const int, int*,
                      cudnnConvolutionBwdFilterAlgoPerf_t*, void*, size_t));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardFilterAlgorithm_v7,
                S (*)(H, const T, const T, const C, const F, const int, int*, cudnnConvolutionBwdFilterAlgoPerf_t*));
CHECK_SIGNATURE(cudnnGetConvolutionBackwardFilterWorkspaceSize,
                S (*)(H, const T, const T, const C, const F, cudnnConvolutionBwdFilterAlgo_t, size_t*));
CHECK_SIGNATURE(cudnnConvolutionBackwardFilter,
                S (*)(H, const void*, const T, const void*, const T, const void*, const C,
                      cudnnConvolutionBwdFilterAlgo_t, void*, size_t, const void*, const F, void*));
CHECK_SIGNATURE(cudnnConvolutionBackwardBias, S (*)(H, const void*, const T, const void*, const void*, const T, void*));
}  // namespace cudnn_signatures

static_assert(CUDNN_STATUS_SUCCESS == 0 && CUDNN_STATUS_NOT_INITIALIZED == 1001 && CUDNN_STATUS_BAD_PARAM == 2000 &&
              CUDNN_STATUS_BAD_PARAM_NULL_POINTER == 2002 && CUDNN_STATUS_NOT_SUPPORTED == 3000 &&
              CUDNN_STATUS_INTERNAL_ERROR == 4000 && CUDNN_STATUS_EXECUTION_FAILED == 5000 &&
              CUDNN_STATUS_ALLOC_FAILED == 4003 && CUDNN_STATUS_INVALID_VALUE == 2001);
static_assert(CUDNN_DATA_FLOAT == 0 && CUDNN_DATA_DOUBLE == 1 && CUDNN_DATA_HALF == 2 && CUDNN_DATA_INT8 == 3 &&
              CUDNN_DATA_INT32 == 4 && CUDNN_DATA_UINT8 == 6 && CUDNN_DATA_BFLOAT16 == 9 && CUDNN_DATA_INT64 == 10 &&
              CUDNN_DATA_BOOLEAN == 11);
static_assert(CUDNN_DEFAULT_MATH == 0 && CUDNN_TENSOR_OP_MATH == 1 && CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION == 2 &&
              CUDNN_FMA_MATH == 3);
static_assert(CUDNN_TENSOR_NCHW == 0 && CUDNN_TENSOR_NHWC == 1 && CUDNN_TENSOR_NCHW_VECT_C == 2);
static_assert(CUDNN_CONVOLUTION == 0 && CUDNN_CROSS_CORRELATION == 1 && CUDNN_NON_DETERMINISTIC == 0 &&
              CUDNN_DETERMINISTIC == 1);
static_assert(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM == 0 && CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM == 1 &&
              CUDNN_CONVOLUTION_FWD_ALGO_GEMM == 2 && CUDNN_CONVOLUTION_FWD_ALGO_DIRECT == 3 &&
              CUDNN_CONVOLUTION_FWD_ALGO_FFT == 4 && CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING == 5 &&
              CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD == 6 && CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED == 7 &&
              CUDNN_CONVOLUTION_FWD_ALGO_COUNT == 8);
static_assert(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 == 0 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 == 1 &&
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT == 2 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING == 3 &&
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD == 4 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED == 5 &&
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT == 6);
static_assert(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 == 0 && CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 == 1 &&
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT == 2 && CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 == 3 &&
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD == 4 &&
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED == 5 &&
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING == 6 && CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT == 7);
static_assert(CUDNN_VERSION == 91900 && CUDNN_DIM_MAX == 8);
static_assert(std::is_same_v<decltype(cudnnConvolutionFwdAlgoPerf_t::memory), size_t> &&
              std::is_same_v<decltype(cudnnConvolutionFwdAlgoPerf_t::time), float> &&
              std::is_same_v<decltype(cudnnConvolutionFwdAlgoPerf_t::determinism), cudnnDeterminism_t> &&
              std::is_same_v<decltype(cudnnConvolutionFwdAlgoPerf_t::mathType), cudnnMathType_t> &&
              sizeof(cudnnConvolutionFwdAlgoPerf_t) == sizeof(cudnnConvolutionBwdDataAlgoPerf_t));

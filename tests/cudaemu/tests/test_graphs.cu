// Tests of stream capture and graph replay (src/graphs.cpp): captured work does not run, replay runs
// it in order with the arguments it was captured with (pointers to the same memory, scalars by
// value), cuBLAS and cuDNN calls are captured too, and what the reference forbids during a capture
// (host synchronization, allocation, a copy the host waits for, a dependency on uncaptured work)
// fails and invalidates the capture. Every test holds in the eager and the deferred stream modes.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudaemu/control.h"
#include "cudnn.h"
#include "test_support.h"

using cudaemu::StreamMode;
using test_support::DeviceBuffer;
using test_support::StreamModeGuard;

// out[i] = out[i] * factor + *addend: a scalar argument (captured by value) and a pointer argument
// (read when the kernel runs).
__global__ void graphs_scale_add_kernel(float* out, float factor, const float* addend, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = out[i] * factor + *addend;
  }
}

namespace {

constexpr int kCount = 64;

struct Stream {
  cudaStream_t handle = nullptr;
  Stream() { REQUIRE(cudaStreamCreateWithFlags(&handle, cudaStreamNonBlocking) == cudaSuccess); }
  ~Stream() { cudaStreamDestroy(handle); }
};

cudaError_t scale_add(float* out, float factor, const float* addend, cudaStream_t stream) {
  return cudaemu::launch(graphs_scale_add_kernel, 1, kCount, 0, stream, out, factor, addend, kCount);
}

// The upload is legacy-stream work, which a non-blocking stream does not wait for: wait here.
void upload_scalar(DeviceBuffer<float>& buffer, float value) {
  buffer.upload(std::vector<float>(1, value));
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
}

// Ends the capture of `stream` and instantiates it; REQUIREs both to succeed.
cudaGraphExec_t end_and_instantiate(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  REQUIRE(graph != nullptr);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
  return exec;
}

}  // namespace

TEST_CASE("graphs: captured work runs only at launch, with scalars as captured and memory as it is then",
          "[cudaemu][graphs]") {
  for (const StreamMode mode : {StreamMode::eager, StreamMode::deferred}) {
    StreamModeGuard guard(mode, 3);
    Stream stream;
    DeviceBuffer<float> data(kCount);
    DeviceBuffer<float> addend(1);
    data.upload(std::vector<float>(kCount, 1.0f));
    upload_scalar(addend, 10.0f);  // and the data
    float factor = 2.0f;
    REQUIRE(cudaStreamBeginCapture(stream.handle, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    REQUIRE(cudaStreamIsCapturing(stream.handle, &status) == cudaSuccess);
    CHECK(status == cudaStreamCaptureStatusActive);
    REQUIRE(scale_add(data.get(), factor, addend.get(), stream.handle) == cudaSuccess);
    factor = 100.0f;  // the captured launch keeps 2
    REQUIRE(cudaMemsetAsync(data.get(), 0, sizeof(float), stream.handle) == cudaSuccess);
    cudaGraphExec_t exec = end_and_instantiate(stream.handle);
    REQUIRE(cudaStreamIsCapturing(stream.handle, &status) == cudaSuccess);
    CHECK(status == cudaStreamCaptureStatusNone);
    CHECK(data.download() == std::vector<float>(kCount, 1.0f));  // nothing ran

    const auto launches = cudaemu::launch_count();
    REQUIRE(cudaGraphLaunch(exec, stream.handle) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream.handle) == cudaSuccess);
    std::vector<float> expected(kCount, 1.0f * 2.0f + 10.0f);
    expected[0] = 0.0f;  // the memset ran after the kernel
    CHECK(data.download() == expected);
    // A second replay reads the addend as it is now: the pointer, not the value, was captured.
    upload_scalar(addend, -1.0f);
    REQUIRE(cudaGraphLaunch(exec, stream.handle) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream.handle) == cudaSuccess);
    for (float& x : expected) x = x * 2.0f - 1.0f;
    expected[0] = 0.0f;
    CHECK(data.download() == expected);
    CHECK(cudaemu::launch_count() - launches == 2);
    REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  }
}

TEST_CASE("graphs: a replayed cuBLAS GEMM and cuDNN convolution equal the eager calls bit for bit",
          "[cudaemu][graphs]") {
  StreamModeGuard guard(StreamMode::eager);
  Stream stream;
  constexpr int n = 8;
  const std::vector<float> a_host = test_support::random_floats(n * n, 1);
  const std::vector<float> b_host = test_support::random_floats(n * n, 2);
  DeviceBuffer<float> a(n * n), b(n * n), eager(n * n), replayed(n * n);
  a.upload(a_host);
  b.upload(b_host);
  cublasHandle_t blas = nullptr;
  REQUIRE(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasSetStream(blas, stream.handle) == CUBLAS_STATUS_SUCCESS);
  cudnnHandle_t dnn = nullptr;
  REQUIRE(cudnnCreate(&dnn) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetStream(dnn, stream.handle) == CUDNN_STATUS_SUCCESS);
  // A 3x3 convolution of a (1, 1, 8, 8) image with b's first 9 values, padding 1.
  cudnnTensorDescriptor_t image = nullptr;
  cudnnFilterDescriptor_t filter = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  REQUIRE(cudnnCreateTensorDescriptor(&image) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(image, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, n, n) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnCreateFilterDescriptor(&filter) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 1, 1, 3, 3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnCreateConvolutionDescriptor(&conv) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
  const float one = 1.0f, zero = 0.0f;
  DeviceBuffer<float> conv_eager(n * n), conv_replayed(n * n);
  const auto run = [&](float* gemm_out, float* conv_out) {
    REQUIRE(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &one, a.get(), n, b.get(), n, &zero, gemm_out, n) ==
            CUBLAS_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionForward(dnn, &one, image, a.get(), filter, b.get(), conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, image,
                                    conv_out) == CUDNN_STATUS_SUCCESS);
  };
  run(eager.get(), conv_eager.get());
  REQUIRE(cudaStreamBeginCapture(stream.handle, cudaStreamCaptureModeGlobal) == cudaSuccess);
  run(replayed.get(), conv_replayed.get());
  cudaGraphExec_t exec = end_and_instantiate(stream.handle);
  CHECK(replayed.download() != eager.download());  // fresh memory is NaN: nothing ran yet
  REQUIRE(cudaGraphLaunch(exec, stream.handle) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream.handle) == cudaSuccess);
  CHECK(replayed.download() == eager.download());
  CHECK(conv_replayed.download() == conv_eager.download());
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  cudnnDestroyConvolutionDescriptor(conv);
  cudnnDestroyFilterDescriptor(filter);
  cudnnDestroyTensorDescriptor(image);
  cudnnDestroy(dnn);
  cublasDestroy(blas);
}

TEST_CASE("graphs: a host synchronization, an allocation or a blocking copy during capture invalidates it",
          "[cudaemu][graphs]") {
  StreamModeGuard guard(StreamMode::eager);
  Stream stream;
  DeviceBuffer<float> data(kCount);
  DeviceBuffer<float> addend(1);
  std::vector<float> host(kCount);
  const auto expect_invalidated = [&](const char* what, auto&& forbidden) {
    INFO(what);
    REQUIRE(cudaStreamBeginCapture(stream.handle, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    REQUIRE(scale_add(data.get(), 2.0f, addend.get(), stream.handle) == cudaSuccess);
    CHECK(forbidden() != cudaSuccess);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    REQUIRE(cudaStreamIsCapturing(stream.handle, &status) == cudaSuccess);
    CHECK(status == cudaStreamCaptureStatusInvalidated);
    CHECK(scale_add(data.get(), 2.0f, addend.get(), stream.handle) == cudaErrorStreamCaptureInvalidated);
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&host);
    CHECK(cudaStreamEndCapture(stream.handle, &graph) == cudaErrorStreamCaptureInvalidated);
    CHECK(graph == nullptr);
    cudaGetLastError();
  };
  expect_invalidated("cudaStreamSynchronize", [&] { return cudaStreamSynchronize(stream.handle); });
  expect_invalidated("cudaDeviceSynchronize", [] { return cudaDeviceSynchronize(); });
  expect_invalidated("cudaStreamQuery", [&] { return cudaStreamQuery(stream.handle); });
  expect_invalidated("cudaMalloc", [] {
    void* p = nullptr;
    return cudaMalloc(&p, 16);
  });
  expect_invalidated("cudaFree", [&] { return cudaFree(addend.get()); });
  expect_invalidated("cudaMemcpy to the host", [&] {
    return cudaMemcpy(host.data(), data.get(), sizeof(float) * kCount, cudaMemcpyDeviceToHost);
  });
  expect_invalidated("cudaMemcpyAsync from pageable memory on the capturing stream", [&] {
    return cudaMemcpyAsync(data.get(), host.data(), sizeof(float) * kCount, cudaMemcpyHostToDevice, stream.handle);
  });
  cudaEvent_t outside = nullptr;
  REQUIRE(cudaEventCreate(&outside) == cudaSuccess);
  REQUIRE(cudaEventRecord(outside, nullptr) == cudaSuccess);
  expect_invalidated("waiting for an event recorded outside the capture",
                     [&] { return cudaStreamWaitEvent(stream.handle, outside, 0); });
  REQUIRE(cudaEventDestroy(outside) == cudaSuccess);
  // The buffers were never touched by the refused captures, and the stream works normally again.
  upload_scalar(addend, 1.0f);
  data.upload(std::vector<float>(kCount, 0.0f));
  REQUIRE(scale_add(data.get(), 2.0f, addend.get(), stream.handle) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream.handle) == cudaSuccess);
  CHECK(data.download() == std::vector<float>(kCount, 1.0f));
}

TEST_CASE("graphs: the rules of capture modes, events and streams", "[cudaemu][graphs]") {
  StreamModeGuard guard(StreamMode::eager);
  Stream stream;
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal) == cudaErrorStreamCaptureUnsupported);
  CHECK(cudaStreamEndCapture(stream.handle, &graph) == cudaErrorIllegalState);
  // Relaxed mode permits allocation; an event recorded in the capture can be waited for by it and
  // not queried.
  REQUIRE(cudaStreamBeginCapture(stream.handle, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  CHECK(cudaStreamBeginCapture(stream.handle, cudaStreamCaptureModeRelaxed) == cudaErrorIllegalState);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 16) == cudaSuccess);
  cudaEvent_t inside = nullptr;
  REQUIRE(cudaEventCreate(&inside) == cudaSuccess);
  CHECK(cudaEventRecord(inside, stream.handle) == cudaSuccess);
  CHECK(cudaEventQuery(inside) == cudaErrorCapturedEvent);
  CHECK(cudaStreamWaitEvent(stream.handle, inside, 0) == cudaSuccess);
  REQUIRE(cudaStreamEndCapture(stream.handle, &graph) == cudaSuccess);
  CHECK(cudaEventQuery(inside) == cudaSuccess);  // the capture's marks end with it
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
  CHECK(cudaGraphDestroy(graph) == cudaErrorInvalidValue);
  CHECK(cudaFree(p) == cudaSuccess);
  REQUIRE(cudaEventDestroy(inside) == cudaSuccess);
  cudaGetLastError();
}

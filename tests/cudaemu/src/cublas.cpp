// cudaemu: cuBLAS GEMM on the CPU, from the cuBLAS documentation (cublas<t>gemm, cublasGemmEx,
// cublas<t>gemmStridedBatched, cublasGemmStridedBatchedEx):
//   C[i + j*ldc] = alpha * sum_p op(A)[i,p] * op(B)[p,j] + beta * C[i + j*ldc],
//   op(A)[i,p] = A[i + p*lda] for CUBLAS_OP_N and A[p + i*lda] for CUBLAS_OP_T/CUBLAS_OP_C,
// i < m, j < n, p < k, column-major. Checks as documented: m, n, k, batchCount >= 0,
// lda >= max(1, rows of A as stored), ldb likewise, ldc >= max(1, m), transa/transb valid, alpha
// and beta non-null -> CUBLAS_STATUS_INVALID_VALUE; null handle -> CUBLAS_STATUS_NOT_INITIALIZED.
// Quick returns: m == 0 or n == 0 does nothing; k == 0 or alpha == 0 scales C by beta without
// reading A and B; beta == 0 does not read C. The sum runs over p in increasing order in the
// accumulation type (float for 32F compute types, double for 64F).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "cublas_v2.h"
#include "cudaemu/float16_bits.h"
#include "internal.h"

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
    void* workspace = nullptr;
    std::size_t workspace_bytes = 0;
};

namespace cudaemu::detail {
namespace {

std::mutex& handles_mutex() {
    static std::mutex* instance = new std::mutex;
    return *instance;
}

std::set<const cublasContext*>& handles() {
    static std::set<const cublasContext*>* instance = new std::set<const cublasContext*>;
    return *instance;
}

const char* status_name(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t blas_fail(cublasStatus_t status, const char* api, const std::string& message) {
    report_error(format("%s: %s (%s)", api, message.c_str(), status_name(status)));
    return status;
}

cublasStatus_t check_handle(cublasHandle_t handle, const char* api) {
    std::lock_guard lock(handles_mutex());
    if (handle == nullptr || handles().count(handle) == 0) {
        return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, api,
                    format("handle %p was not created by cublasCreate or was destroyed", static_cast<void*>(handle)));
    }
    return CUBLAS_STATUS_SUCCESS;
}

float load_as_float(const void* base, cudaDataType type, std::size_t index) {
    switch (type) {
        case CUDA_R_32F: return static_cast<const float*>(base)[index];
        case CUDA_R_16F: return half_bits_to_float(static_cast<const std::uint16_t*>(base)[index]);
        case CUDA_R_16BF: return bfloat16_bits_to_float(static_cast<const std::uint16_t*>(base)[index]);
        default: return 0.0f;
    }
}

void store_from_float(void* base, cudaDataType type, std::size_t index, float value) {
    switch (type) {
        case CUDA_R_32F: static_cast<float*>(base)[index] = value; break;
        case CUDA_R_16F: static_cast<std::uint16_t*>(base)[index] = float_to_half_bits(value); break;
        case CUDA_R_16BF: static_cast<std::uint16_t*>(base)[index] = float_to_bfloat16_bits(value); break;
        default: break;
    }
}

std::size_t element_bytes(cudaDataType type) {
    switch (type) {
        case CUDA_R_64F: return 8;
        case CUDA_R_32F: return 4;
        case CUDA_R_16F:
        case CUDA_R_16BF: return 2;
        default: return 0;
    }
}

const char* type_name(cudaDataType type) {
    switch (type) {
        case CUDA_R_64F: return "CUDA_R_64F";
        case CUDA_R_32F: return "CUDA_R_32F";
        case CUDA_R_16F: return "CUDA_R_16F";
        case CUDA_R_16BF: return "CUDA_R_16BF";
        default: return "an unsupported cudaDataType";
    }
}

struct Gemm {
    const char* api;
    cublasOperation_t transa, transb;
    int m, n, k;
    const void* alpha;
    const void* A;
    cudaDataType a_type;
    int lda;
    long long stride_a;
    const void* B;
    cudaDataType b_type;
    int ldb;
    long long stride_b;
    const void* beta;
    void* C;
    cudaDataType c_type;
    int ldc;
    long long stride_c;
    int batch;
    bool use_double;  // accumulate and scale in double (64F compute type)
    bool tf32;        // round float inputs to TF32
};

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// Bytes spanned by a column-major rows x cols matrix with leading dimension ld.
std::size_t span_bytes(int rows, int cols, int ld, std::size_t element) {
    if (rows == 0 || cols == 0) {
        return 0;
    }
    return (static_cast<std::size_t>(cols - 1) * static_cast<std::size_t>(ld) + static_cast<std::size_t>(rows)) * element;
}

cublasStatus_t check_matrix(const Gemm& g, const char* name, const void* base, long long stride, int rows, int cols,
                            int ld, std::size_t element) {
    const std::size_t one = span_bytes(rows, cols, ld, element);
    if (one == 0 || g.batch == 0) {
        return CUBLAS_STATUS_SUCCESS;
    }
    for (int b = 0; b < g.batch; ++b) {
        const auto* start = static_cast<const char*>(base) + static_cast<std::ptrdiff_t>(stride) * b *
                                                                 static_cast<std::ptrdiff_t>(element);
        if (!find_allocation(start, one, nullptr)) {
            return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, g.api,
                        format("matrix %s of batch %d (%d x %d, ld %d, %zu bytes from %s) is not inside one device "
                               "allocation; the GEMM kernel would fault",
                               name, b, rows, cols, ld, one, describe_pointer(start).c_str()));
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

template <class Acc>
void run_gemm(const Gemm& g, Acc alpha, Acc beta) {
    const std::size_t m = static_cast<std::size_t>(g.m);
    const std::size_t n = static_cast<std::size_t>(g.n);
    const std::size_t k = static_cast<std::size_t>(g.k);
    // op(A) as m rows of k contiguous values and op(B) as n columns of k contiguous values, converted
    // to the accumulation type once.
    std::vector<Acc> a_rows(m * k);
    std::vector<Acc> b_cols(n * k);
    for (int batch = 0; batch < g.batch; ++batch) {
        const auto* a = static_cast<const char*>(g.A) + g.stride_a * batch * static_cast<long long>(element_bytes(g.a_type));
        const auto* b = static_cast<const char*>(g.B) + g.stride_b * batch * static_cast<long long>(element_bytes(g.b_type));
        char* c = static_cast<char*>(g.C) + g.stride_c * batch * static_cast<long long>(element_bytes(g.c_type));
        const bool read_inputs = k > 0 && alpha != Acc(0);
        if (read_inputs) {
            for (std::size_t i = 0; i < m; ++i) {
                for (std::size_t p = 0; p < k; ++p) {
                    const std::size_t index = g.transa == CUBLAS_OP_N ? i + p * static_cast<std::size_t>(g.lda)
                                                                      : p + i * static_cast<std::size_t>(g.lda);
                    Acc value;
                    if constexpr (std::is_same_v<Acc, double>) {
                        value = reinterpret_cast<const double*>(a)[index];
                    } else {
                        value = load_as_float(a, g.a_type, index);
                        if (g.tf32) {
                            value = round_to_tf32(value);
                        }
                    }
                    a_rows[i * k + p] = value;
                }
            }
            for (std::size_t j = 0; j < n; ++j) {
                for (std::size_t p = 0; p < k; ++p) {
                    const std::size_t index = g.transb == CUBLAS_OP_N ? p + j * static_cast<std::size_t>(g.ldb)
                                                                      : j + p * static_cast<std::size_t>(g.ldb);
                    Acc value;
                    if constexpr (std::is_same_v<Acc, double>) {
                        value = reinterpret_cast<const double*>(b)[index];
                    } else {
                        value = load_as_float(b, g.b_type, index);
                        if (g.tf32) {
                            value = round_to_tf32(value);
                        }
                    }
                    b_cols[j * k + p] = value;
                }
            }
        }
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t i = 0; i < m; ++i) {
                // Accumulated in double and rounded once: real cuBLAS accumulates in float in an
                // order the emulator cannot know, and the emulator checks how strata calls
                // cuBLAS, so its own rounding must not mask or mimic an error of ours.
                double exact = 0;
                if (read_inputs) {
                    const Acc* row = &a_rows[i * k];
                    const Acc* col = &b_cols[j * k];
                    for (std::size_t p = 0; p < k; ++p) {
                        exact += static_cast<double>(row[p]) * static_cast<double>(col[p]);
                    }
                }
                Acc sum = static_cast<Acc>(exact);
                const std::size_t index = i + j * static_cast<std::size_t>(g.ldc);
                Acc result = alpha * sum;
                if (beta != Acc(0)) {
                    Acc old;
                    if constexpr (std::is_same_v<Acc, double>) {
                        old = reinterpret_cast<const double*>(c)[index];
                    } else {
                        old = load_as_float(c, g.c_type, index);
                    }
                    result += beta * old;
                }
                if constexpr (std::is_same_v<Acc, double>) {
                    reinterpret_cast<double*>(c)[index] = result;
                } else {
                    store_from_float(c, g.c_type, index, result);
                }
            }
        }
    }
}

cublasStatus_t gemm(cublasHandle_t handle, Gemm g, cublasComputeType_t compute) {
    if (cublasStatus_t s = check_handle(handle, g.api); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    // The GEMM runs now, after the work queued before it on the handle's stream: the same order as
    // queueing it there. Host-pointer-mode scalars are read now, as cuBLAS reads them at the call.
    complete_stream(handle->stream);
    if (!valid_op(g.transa) || !valid_op(g.transb)) {
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, g.api,
                    format("invalid operation (transa %d, transb %d)", static_cast<int>(g.transa),
                           static_cast<int>(g.transb)));
    }
    if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0) {
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, g.api,
                    format("negative size (m %d, n %d, k %d, batchCount %d)", g.m, g.n, g.k, g.batch));
    }
    const int a_rows = g.transa == CUBLAS_OP_N ? g.m : g.k;
    const int a_cols = g.transa == CUBLAS_OP_N ? g.k : g.m;
    const int b_rows = g.transb == CUBLAS_OP_N ? g.k : g.n;
    const int b_cols = g.transb == CUBLAS_OP_N ? g.n : g.k;
    if (g.lda < std::max(1, a_rows) || g.ldb < std::max(1, b_rows) || g.ldc < std::max(1, g.m)) {
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, g.api,
                    format("leading dimension too small: lda %d (needs >= %d), ldb %d (needs >= %d), ldc %d (needs >= "
                           "%d)",
                           g.lda, std::max(1, a_rows), g.ldb, std::max(1, b_rows), g.ldc, std::max(1, g.m)));
    }
    if (g.alpha == nullptr || g.beta == nullptr) {
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, g.api, "alpha or beta is null");
    }

    const bool float_compute = compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
                               compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    const bool double_compute = compute == CUBLAS_COMPUTE_64F || compute == CUBLAS_COMPUTE_64F_PEDANTIC;
    const bool half_inputs = (g.a_type == CUDA_R_16F || g.a_type == CUDA_R_16BF) && g.b_type == g.a_type &&
                             (g.c_type == g.a_type || g.c_type == CUDA_R_32F);
    const bool float_types = g.a_type == CUDA_R_32F && g.b_type == CUDA_R_32F && g.c_type == CUDA_R_32F;
    const bool double_types = g.a_type == CUDA_R_64F && g.b_type == CUDA_R_64F && g.c_type == CUDA_R_64F;
    const bool supported = (float_compute && float_types) ||
                           (float_compute && compute != CUBLAS_COMPUTE_32F_FAST_TF32 && half_inputs) ||
                           (double_compute && double_types);
    if (!supported) {
        return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, g.api,
                    format("A %s, B %s, C %s with compute type %d is not a supported combination", type_name(g.a_type),
                           type_name(g.b_type), type_name(g.c_type), static_cast<int>(compute)));
    }
    g.use_double = double_compute;
    const bool tf32_requested = compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
                                (compute == CUBLAS_COMPUTE_32F && float_types &&
                                 (handle->math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH);
    g.tf32 = tf32_requested && tf32_allowed();

    if (g.m == 0 || g.n == 0 || g.batch == 0) {
        return CUBLAS_STATUS_SUCCESS;
    }
    const double alpha = g.use_double ? *static_cast<const double*>(g.alpha) : *static_cast<const float*>(g.alpha);
    const double beta = g.use_double ? *static_cast<const double*>(g.beta) : *static_cast<const float*>(g.beta);
    if (g.k > 0 && alpha != 0.0) {
        if (cublasStatus_t s = check_matrix(g, "A", g.A, g.stride_a, a_rows, a_cols, g.lda, element_bytes(g.a_type));
            s != CUBLAS_STATUS_SUCCESS) {
            return s;
        }
        if (cublasStatus_t s = check_matrix(g, "B", g.B, g.stride_b, b_rows, b_cols, g.ldb, element_bytes(g.b_type));
            s != CUBLAS_STATUS_SUCCESS) {
            return s;
        }
    }
    if (cublasStatus_t s = check_matrix(g, "C", g.C, g.stride_c, g.m, g.n, g.ldc, element_bytes(g.c_type));
        s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    // Captured with the values of alpha and beta read now, as cuBLAS's host pointer mode does.
    const bool recorded = run_or_capture(handle->stream, [g, alpha, beta] {
      if (g.use_double) {
        run_gemm<double>(g, alpha, beta);
      } else {
        run_gemm<float>(g, static_cast<float>(alpha), static_cast<float>(beta));
      }
    });
    if (!recorded) {
      return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, g.api,
                       format("stream %p's capture is invalidated", static_cast<void*>(handle->stream)));
    }
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace
}  // namespace cudaemu::detail

using cudaemu::detail::format;

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    if (handle == nullptr) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate", "null output pointer");
    }
    auto* context = new cublasContext;
    std::lock_guard lock(cudaemu::detail::handles_mutex());
    cudaemu::detail::handles().insert(context);
    *handle = context;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasDestroy"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    std::lock_guard lock(cudaemu::detail::handles_mutex());
    cudaemu::detail::handles().erase(handle);
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasGetVersion"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (version == nullptr) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGetVersion", "null output pointer");
    }
    *version = CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasSetWorkspace"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (workspaceSizeInBytes > 0) {
        if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) {
            return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace",
                                         format("workspace %p is not aligned to 256 bytes", workspace));
        }
        if (!cudaemu::detail::find_allocation(workspace, workspaceSizeInBytes, nullptr)) {
            return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace",
                                         format("%zu bytes at %s are not device memory", workspaceSizeInBytes,
                                                cudaemu::detail::describe_pointer(workspace).c_str()));
        }
    }
    handle->workspace = workspace;
    handle->workspace_bytes = workspaceSizeInBytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasSetStream"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (!cudaemu::detail::is_valid_stream(streamId)) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetStream",
                                     format("stream %p is not a live stream", static_cast<void*>(streamId)));
    }
    handle->stream = streamId;
    handle->workspace = nullptr;
    handle->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasGetStream"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (streamId == nullptr) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGetStream", "null output pointer");
    }
    *streamId = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasGetPointerMode"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (mode == nullptr) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGetPointerMode", "null output pointer");
    }
    *mode = CUBLAS_POINTER_MODE_HOST;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasSetPointerMode"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (mode == CUBLAS_POINTER_MODE_HOST) {
        return CUBLAS_STATUS_SUCCESS;
    }
    if (mode == CUBLAS_POINTER_MODE_DEVICE) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasSetPointerMode",
                                     "CUBLAS_POINTER_MODE_DEVICE is not emulated");
    }
    return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetPointerMode",
                                 format("unknown pointer mode %d", static_cast<int>(mode)));
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasGetMathMode"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    if (mode == nullptr) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGetMathMode", "null output pointer");
    }
    *mode = handle->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (cublasStatus_t s = cudaemu::detail::check_handle(handle, "cublasSetMathMode"); s != CUBLAS_STATUS_SUCCESS) {
        return s;
    }
    const int base = static_cast<int>(mode) & ~static_cast<int>(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    if (base < CUBLAS_DEFAULT_MATH || base > CUBLAS_TF32_TENSOR_OP_MATH) {
        return cudaemu::detail::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetMathMode",
                                     format("math mode %d is not emulated", static_cast<int>(mode)));
    }
    handle->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) { return cudaemu::detail::status_name(status); }

const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
        case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
        case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    }
    return "unknown error";
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
    return cudaemu::detail::gemm(handle,
                                 {"cublasSgemm", transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F,
                                  ldb, 0, beta, C, CUDA_R_32F, ldc, 0, 1, false, false},
                                 CUBLAS_COMPUTE_32F);
}

cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const double* alpha, const double* A, int lda, const double* B, int ldb,
                              const double* beta, double* C, int ldc) {
    return cudaemu::detail::gemm(handle,
                                 {"cublasDgemm", transa, transb, m, n, k, alpha, A, CUDA_R_64F, lda, 0, B, CUDA_R_64F,
                                  ldb, 0, beta, C, CUDA_R_64F, ldc, 0, 1, false, false},
                                 CUBLAS_COMPUTE_64F);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    static_cast<void>(algo);
    return cudaemu::detail::gemm(handle,
                                 {"cublasGemmEx", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                                  beta, C, Ctype, ldc, 0, 1, false, false},
                                 computeType);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount) {
    return cudaemu::detail::gemm(handle,
                                 {"cublasSgemmStridedBatched", transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda,
                                  strideA, B, CUDA_R_32F, ldb, strideB, beta, C, CUDA_R_32F, ldc, strideC, batchCount,
                                  false, false},
                                 CUBLAS_COMPUTE_32F);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long int strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long int strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
    static_cast<void>(algo);
    return cudaemu::detail::gemm(handle,
                                 {"cublasGemmStridedBatchedEx", transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                                  B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, false, false},
                                 computeType);
}

}  // extern "C"

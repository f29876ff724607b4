// Tests of the emulated cuBLAS GEMMs against a naive triple loop in double precision, for every
// transpose combination, padded leading dimensions, alpha/beta (beta = 0 over NaN-filled C),
// strided batches and the mixed-precision GemmEx configurations, plus the documented status codes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"
#include "test_support.h"

using test_support::DeviceBuffer;

namespace {

struct Handle {
    cublasHandle_t handle = nullptr;
    Handle() { cublasCreate(&handle); }
    ~Handle() { cublasDestroy(handle); }
};

// Element (i, p) of op(X) for a column-major X with leading dimension ld.
template <class T>
double op_at(const std::vector<T>& x, cublasOperation_t op, int ld, int i, int p, std::size_t offset = 0) {
    const std::size_t index = op == CUBLAS_OP_N ? static_cast<std::size_t>(i) + static_cast<std::size_t>(p) * ld
                                                : static_cast<std::size_t>(p) + static_cast<std::size_t>(i) * ld;
    return static_cast<double>(static_cast<float>(x[offset + index]));
}

template <>
double op_at<double>(const std::vector<double>& x, cublasOperation_t op, int ld, int i, int p, std::size_t offset) {
    const std::size_t index = op == CUBLAS_OP_N ? static_cast<std::size_t>(i) + static_cast<std::size_t>(p) * ld
                                                : static_cast<std::size_t>(p) + static_cast<std::size_t>(i) * ld;
    return x[offset + index];
}

struct Reference {
    std::vector<double> value;
    std::vector<double> scale;
};

// C = alpha*op(A)op(B) + beta*C0 over the m x n block of a column-major C with leading dim ldc.
template <class TA, class TC>
Reference reference_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha,
                         const std::vector<TA>& a, int lda, const std::vector<TA>& b, int ldb, double beta,
                         const std::vector<TC>& c0, int ldc, std::size_t a_off = 0, std::size_t b_off = 0,
                         std::size_t c_off = 0) {
    Reference r;
    for (int j = 0; j < n; ++j) {
        for (int i = 0; i < m; ++i) {
            double sum = 0.0;
            double magnitude = 0.0;
            for (int p = 0; p < k; ++p) {
                const double term = op_at(a, ta, lda, i, p, a_off) * op_at(b, tb, ldb, p, j, b_off);
                sum += term;
                magnitude += std::fabs(term);
            }
            double value = alpha * sum;
            double scale = std::fabs(alpha) * magnitude;
            if (beta != 0.0) {
                const double old = static_cast<double>(c0[c_off + static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ldc]);
                value += beta * old;
                scale += std::fabs(beta * old);
            }
            r.value.push_back(value);
            r.scale.push_back(std::max(scale, 1e-30));
        }
    }
    return r;
}

template <class T>
std::vector<T> block_of(const std::vector<T>& c, int m, int n, int ldc, std::size_t offset = 0) {
    std::vector<T> out;
    for (int j = 0; j < n; ++j) {
        for (int i = 0; i < m; ++i) {
            out.push_back(c[offset + static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ldc]);
        }
    }
    return out;
}

// Rounds to 11 significant bits, ties away from zero: an independent model of TF32 conversion.
double tf32(double x) {
    int e = 0;
    const double m = std::frexp(x, &e);
    return std::ldexp(std::round(std::ldexp(m, 11)), e - 11);
}

const char* op_name(cublasOperation_t op) { return op == CUBLAS_OP_N ? "N" : (op == CUBLAS_OP_T ? "T" : "C"); }

}  // namespace

TEST_CASE("cublasSgemm/Dgemm match a naive loop for all transposes and padded leading dims", "[cudaemu][cublas]") {
    Handle h;
    const int m = 37;
    const int n = 23;
    const int k = 19;
    const cublasOperation_t ops[] = {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C};
    for (cublasOperation_t ta : ops) {
        for (cublasOperation_t tb : ops) {
            DYNAMIC_SECTION("op(A) " << op_name(ta) << " op(B) " << op_name(tb)) {
                const int a_rows = ta == CUBLAS_OP_N ? m : k;
                const int a_cols = ta == CUBLAS_OP_N ? k : m;
                const int b_rows = tb == CUBLAS_OP_N ? k : n;
                const int b_cols = tb == CUBLAS_OP_N ? n : k;
                const int lda = a_rows + 3;
                const int ldb = b_rows + 5;
                const int ldc = m + 2;
                const std::vector<float> a = test_support::random_floats(static_cast<std::size_t>(lda) * a_cols, 1);
                const std::vector<float> b = test_support::random_floats(static_cast<std::size_t>(ldb) * b_cols, 2);
                const std::vector<float> c0 = test_support::random_floats(static_cast<std::size_t>(ldc) * n, 3);
                DeviceBuffer<float> da(a.size()), db(b.size()), dc(c0.size());
                da.upload(a);
                db.upload(b);
                dc.upload(c0);
                const float alpha = 1.5f;
                const float beta = -0.75f;
                REQUIRE(cublasSgemm(h.handle, ta, tb, m, n, k, &alpha, da.get(), lda, db.get(), ldb, &beta, dc.get(), ldc) ==
                        CUBLAS_STATUS_SUCCESS);
                const std::vector<float> c = dc.download();
                const Reference r = reference_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc);
                const auto cmp = test_support::compare(block_of(c, m, n, ldc), r.value, r.scale, test_support::kFloatTolerance);
                INFO(cmp.describe());
                CHECK(cmp.ok);
                for (int j = 0; j < n; ++j) {
                    for (int i = m; i < ldc; ++i) {
                        REQUIRE(c[static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ldc] ==
                                c0[static_cast<std::size_t>(i) + static_cast<std::size_t>(j) * ldc]);
                    }
                }

                std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), cd0(c0.begin(), c0.end());
                DeviceBuffer<double> dad(ad.size()), dbd(bd.size()), dcd(cd0.size());
                dad.upload(ad);
                dbd.upload(bd);
                dcd.upload(cd0);
                const double alpha_d = 1.5;
                const double beta_d = -0.75;
                REQUIRE(cublasDgemm(h.handle, ta, tb, m, n, k, &alpha_d, dad.get(), lda, dbd.get(), ldb, &beta_d,
                                    dcd.get(), ldc) == CUBLAS_STATUS_SUCCESS);
                const Reference rd = reference_gemm(ta, tb, m, n, k, alpha_d, ad, lda, bd, ldb, beta_d, cd0, ldc);
                const auto cmpd = test_support::compare(block_of(dcd.download(), m, n, ldc), rd.value, rd.scale,
                                                        test_support::kDoubleTolerance);
                INFO(cmpd.describe());
                CHECK(cmpd.ok);
            }
        }
    }
}

TEST_CASE("beta = 0 does not read C, alpha = 0 does not read A and B, k = 0 scales C", "[cudaemu][cublas]") {
    Handle h;
    const int m = 8;
    const int n = 5;
    const int k = 6;
    const std::vector<float> a = test_support::random_floats(m * k, 4);
    const std::vector<float> b = test_support::random_floats(k * n, 5);
    DeviceBuffer<float> da(a.size()), db(b.size()), dc(m * n);
    da.upload(a);
    db.upload(b);
    const float one = 1.0f;
    const float zero = 0.0f;
    // dc is fresh device memory: NaN everywhere.
    REQUIRE(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), m, db.get(), k, &zero, dc.get(), m) ==
            CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c = dc.download();
    const Reference r = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0, c, m);
    const auto cmp = test_support::compare(c, r.value, r.scale, test_support::kFloatTolerance);
    INFO(cmp.describe());
    CHECK(cmp.ok);

    DeviceBuffer<float> nan_a(a.size()), nan_b(b.size());
    const float two = 2.0f;
    REQUIRE(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &zero, nan_a.get(), m, nan_b.get(), k, &two, dc.get(),
                        m) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> doubled = dc.download();
    for (std::size_t i = 0; i < c.size(); ++i) {
        REQUIRE(doubled[i] == 2.0f * c[i]);
    }
    const float one_half = 0.5f;
    REQUIRE(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, 0, &one, nan_a.get(), m, nan_b.get(), 1, &one_half, dc.get(),
                        m) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> halved = dc.download();
    for (std::size_t i = 0; i < c.size(); ++i) {
        REQUIRE(halved[i] == c[i]);
    }
}

TEST_CASE("strided batched GEMM matches per-batch loops, including a broadcast operand", "[cudaemu][cublas]") {
    Handle h;
    const int m = 9;
    const int n = 7;
    const int k = 11;
    const int batch = 4;
    const long long stride_a = 0;  // one A shared by all batches
    const long long stride_b = static_cast<long long>(n) * k + 3;
    const long long stride_c = static_cast<long long>(m) * n + 1;
    const std::vector<float> a = test_support::random_floats(static_cast<std::size_t>(k) * m, 6);
    const std::vector<float> b = test_support::random_floats(static_cast<std::size_t>(stride_b) * batch, 7);
    const std::vector<float> c0 = test_support::random_floats(static_cast<std::size_t>(stride_c) * batch, 8);
    DeviceBuffer<float> da(a.size()), db(b.size()), dc(c0.size());
    da.upload(a);
    db.upload(b);
    dc.upload(c0);
    const float alpha = -1.25f;
    const float beta = 0.5f;
    REQUIRE(cublasSgemmStridedBatched(h.handle, CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, &alpha, da.get(), k, stride_a, db.get(),
                                      n, stride_b, &beta, dc.get(), m, stride_c, batch) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c = dc.download();
    for (int i = 0; i < batch; ++i) {
        const Reference r = reference_gemm(CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, alpha, a, k, b, n, beta, c0, m, 0,
                                           static_cast<std::size_t>(stride_b) * i, static_cast<std::size_t>(stride_c) * i);
        const auto cmp = test_support::compare(block_of(c, m, n, m, static_cast<std::size_t>(stride_c) * i), r.value,
                                               r.scale, test_support::kFloatTolerance);
        INFO("batch " << i << ": " << cmp.describe());
        CHECK(cmp.ok);
    }
    // The gap element between batches is not part of any C and must be untouched.
    CHECK(c[static_cast<std::size_t>(m) * n] == c0[static_cast<std::size_t>(m) * n]);

    const std::vector<float> b2 = test_support::random_floats(static_cast<std::size_t>(k) * n * batch, 9);
    DeviceBuffer<float> db2(b2.size()), dc2(static_cast<std::size_t>(m) * n * batch);
    db2.upload(b2);
    const float one = 1.0f;
    const float zero = 0.0f;
    REQUIRE(cublasGemmStridedBatchedEx(h.handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_32F, k, 0,
                                       db2.get(), CUDA_R_32F, k, static_cast<long long>(k) * n, &zero, dc2.get(),
                                       CUDA_R_32F, m, static_cast<long long>(m) * n, batch, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c2 = dc2.download();
    for (int i = 0; i < batch; ++i) {
        const Reference r = reference_gemm(CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, 1.0, a, k, b2, k, 0.0, c2, m, 0,
                                           static_cast<std::size_t>(k) * n * i, 0);
        const auto cmp = test_support::compare(block_of(c2, m, n, m, static_cast<std::size_t>(m) * n * i), r.value,
                                               r.scale, test_support::kFloatTolerance);
        INFO("Ex batch " << i << ": " << cmp.describe());
        CHECK(cmp.ok);
    }
}

TEST_CASE("cublasGemmEx with bf16 and f16 inputs accumulates in float", "[cudaemu][cublas]") {
    Handle h;
    const int m = 24;
    const int n = 10;
    const int k = 40;
    const std::vector<float> af = test_support::random_floats(static_cast<std::size_t>(m) * k, 10);
    const std::vector<float> bf = test_support::random_floats(static_cast<std::size_t>(k) * n, 11);
    const float one = 1.0f;
    const float zero = 0.0f;

    SECTION("bf16 inputs, float and bf16 outputs") {
        std::vector<__nv_bfloat16> a(af.begin(), af.end()), b(bf.begin(), bf.end());
        DeviceBuffer<__nv_bfloat16> da(a.size()), db(b.size()), dc16(static_cast<std::size_t>(m) * n);
        DeviceBuffer<float> dc32(static_cast<std::size_t>(m) * n);
        da.upload(a);
        db.upload(b);
        REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_16BF, m, db.get(),
                             CUDA_R_16BF, k, &zero, dc32.get(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
        REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_16BF, m, db.get(),
                             CUDA_R_16BF, k, &zero, dc16.get(), CUDA_R_16BF, m, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT_TENSOR_OP) == CUBLAS_STATUS_SUCCESS);
        const std::vector<float> unused;
        const Reference r = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0, unused, m);
        const auto c32 = test_support::compare(dc32.download(), r.value, r.scale, test_support::kFloatTolerance);
        INFO(c32.describe());
        CHECK(c32.ok);
        const auto c16 = test_support::compare(dc16.download(), r.value, r.scale, test_support::kBfloat16Tolerance);
        INFO(c16.describe());
        CHECK(c16.ok);
    }
    SECTION("f16 inputs and output") {
        std::vector<__half> a(af.begin(), af.end()), b(bf.begin(), bf.end());
        DeviceBuffer<__half> da(a.size()), db(b.size()), dc(static_cast<std::size_t>(m) * n);
        da.upload(a);
        db.upload(b);
        REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_16F, m, db.get(),
                             CUDA_R_16F, k, &zero, dc.get(), CUDA_R_16F, m, CUBLAS_COMPUTE_32F_PEDANTIC,
                             CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
        const std::vector<float> unused;
        const Reference r = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0, unused, m);
        const auto cmp = test_support::compare(dc.download(), r.value, r.scale, test_support::kHalfTolerance);
        INFO(cmp.describe());
        CHECK(cmp.ok);
    }
}

TEST_CASE("a bf16 GEMM output is its float result rounded to the nearest bf16, ties to even", "[cudaemu][cublas]") {
    // The tensor cores accumulate in float and round once when they store bf16: the bf16-output
    // GEMM must equal the float-output GEMM of the same bf16 operands, alpha, beta and C, rounded
    // to nearest even, element by element (as strata calls it: op(A) transposed, alpha/beta blending).
    Handle h;
    const int m = 12;
    const int n = 9;
    const int k = 33;
    const std::vector<float> af = test_support::random_floats(static_cast<std::size_t>(k) * m, 20);
    const std::vector<float> bf = test_support::random_floats(static_cast<std::size_t>(k) * n, 21);
    const std::vector<float> cf = test_support::random_floats(static_cast<std::size_t>(m) * n, 22);
    const std::vector<__nv_bfloat16> a(af.begin(), af.end()), b(bf.begin(), bf.end()), c0(cf.begin(), cf.end());
    DeviceBuffer<__nv_bfloat16> da(a.size()), db(b.size()), dc16(c0.size());
    DeviceBuffer<float> dc32(c0.size());
    da.upload(a);
    db.upload(b);
    dc16.upload(c0);
    dc32.upload(std::vector<float>(c0.begin(), c0.end()));
    const float alpha = 1.5f;
    const float beta = -0.5f;
    REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da.get(), CUDA_R_16BF, k, db.get(),
                         CUDA_R_16BF, k, &beta, dc32.get(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da.get(), CUDA_R_16BF, k, db.get(),
                         CUDA_R_16BF, k, &beta, dc16.get(), CUDA_R_16BF, m, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> wide = dc32.download();
    const std::vector<__nv_bfloat16> narrow = dc16.download();
    int truncation_differs = 0;
    for (std::size_t i = 0; i < wide.size(); ++i) {
        INFO("element " << i << ": float result " << wide[i]);
        REQUIRE(__bfloat16_as_ushort(narrow[i]) == __bfloat16_as_ushort(__float2bfloat16_rn(wide[i])));
        std::uint32_t bits = 0;
        std::memcpy(&bits, &wide[i], sizeof bits);
        truncation_differs += __bfloat16_as_ushort(narrow[i]) != static_cast<std::uint16_t>(bits >> 16);
    }
    // Some elements round up, so truncating the float result would fail the check above.
    CHECK(truncation_differs > 0);
}

TEST_CASE("TF32 compute rounds the inputs, strict fp32 does not", "[cudaemu][cublas]") {
    Handle h;
    const int m = 16;
    const int n = 16;
    const int k = 64;
    const std::vector<float> a = test_support::random_floats(static_cast<std::size_t>(m) * k, 12);
    const std::vector<float> b = test_support::random_floats(static_cast<std::size_t>(k) * n, 13);
    std::vector<double> a_tf32(a.size()), b_tf32(b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        a_tf32[i] = tf32(a[i]);
    }
    for (std::size_t i = 0; i < b.size(); ++i) {
        b_tf32[i] = tf32(b[i]);
    }
    DeviceBuffer<float> da(a.size()), db(b.size()), dc(static_cast<std::size_t>(m) * n);
    da.upload(a);
    db.upload(b);
    const float one = 1.0f;
    const float zero = 0.0f;
    const std::vector<float> unused;
    const std::vector<double> unused_d;
    const Reference exact = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a, m, b, k, 0.0, unused, m);
    const Reference rounded = reference_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0, a_tf32, m, b_tf32, k, 0.0, unused_d, m);

    REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_32F, m, db.get(), CUDA_R_32F,
                         k, &zero, dc.get(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F_FAST_TF32,
                         CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> fast = dc.download();
    CHECK(test_support::compare(fast, rounded.value, rounded.scale, test_support::kFloatTolerance).ok);
    CHECK_FALSE(test_support::compare(fast, exact.value, exact.scale, test_support::kFloatTolerance).ok);
    CHECK(test_support::compare(fast, exact.value, exact.scale, test_support::kTf32Tolerance).ok);

    REQUIRE(cublasSetMathMode(h.handle, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS);
    REQUIRE(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), m, db.get(), k, &zero, dc.get(), m) ==
            CUBLAS_STATUS_SUCCESS);
    CHECK(dc.download() == fast);
    REQUIRE(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), CUDA_R_32F, m, db.get(), CUDA_R_32F,
                         k, &zero, dc.get(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F_PEDANTIC,
                         CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    CHECK(test_support::compare(dc.download(), exact.value, exact.scale, test_support::kFloatTolerance).ok);
    cublasMath_t mode;
    REQUIRE(cublasGetMathMode(h.handle, &mode) == CUBLAS_STATUS_SUCCESS);
    CHECK(mode == CUBLAS_TF32_TENSOR_OP_MATH);
    REQUIRE(cublasSetMathMode(h.handle, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS);
    REQUIRE(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da.get(), m, db.get(), k, &zero, dc.get(), m) ==
            CUBLAS_STATUS_SUCCESS);
    CHECK(test_support::compare(dc.download(), exact.value, exact.scale, test_support::kFloatTolerance).ok);
}

TEST_CASE("invalid GEMM arguments return the documented status", "[cudaemu][cublas]") {
    Handle h;
    DeviceBuffer<float> a(64), b(64), c(64);
    DeviceBuffer<double> d(64);
    const float one = 1.0f;
    const double one_d = 1.0;
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, a.get(), 7, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_T, CUBLAS_OP_N, 8, 4, 6, &one, a.get(), 5, b.get(), 6, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_T, 8, 4, 6, &one, a.get(), 8, b.get(), 3, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, a.get(), 8, b.get(), 8, &one, c.get(), 7) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, -1, 8, 8, &one, a.get(), 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_CONJG, CUBLAS_OP_N, 8, 8, 8, &one, a.get(), 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, nullptr, a.get(), 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, a.get(), 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(cublasSgemmStridedBatched(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a.get(), 2, 4, b.get(), 2, 4, &one,
                                    c.get(), 2, 4, -1) == CUBLAS_STATUS_INVALID_VALUE);
    // Degenerate sizes are quick returns; lda must still be at least 1.
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 0, 8, 8, &one, a.get(), 1, b.get(), 8, &one, c.get(), 1) ==
          CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 0, 8, 8, &one, a.get(), 0, b.get(), 8, &one, c.get(), 1) ==
          CUBLAS_STATUS_INVALID_VALUE);

    CHECK(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a.get(), CUDA_R_16F, 4, b.get(), CUDA_R_32F, 4,
                       &one, c.get(), CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d.get(), CUDA_R_64F, 4, d.get(), CUDA_R_64F, 4,
                       &one, d.get(), CUDA_R_64F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a.get(), CUDA_R_16BF, 4, b.get(), CUDA_R_16BF, 4,
                       &one, c.get(), CUDA_R_32F, 4, CUBLAS_COMPUTE_32F_FAST_TF32,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK(cublasGemmEx(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one_d, d.get(), CUDA_R_64F, 4, d.get(), CUDA_R_64F, 4,
                       &one_d, d.get(), CUDA_R_64F, 4, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);

    std::vector<float> host(64, 0.0f);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, host.data(), 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_EXECUTION_FAILED);
    CHECK(cublasSgemm(h.handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, a.get() + 1, 8, b.get(), 8, &one, c.get(), 8) ==
          CUBLAS_STATUS_EXECUTION_FAILED);
}

TEST_CASE("cuBLAS handle state: stream, pointer mode, workspace, status strings", "[cudaemu][cublas]") {
    Handle h;
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
    CHECK(cublasSetStream(h.handle, stream) == CUBLAS_STATUS_SUCCESS);
    cudaStream_t got = nullptr;
    CHECK(cublasGetStream(h.handle, &got) == CUBLAS_STATUS_SUCCESS);
    CHECK(got == stream);
    CHECK(cublasSetPointerMode(h.handle, CUBLAS_POINTER_MODE_HOST) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetPointerMode(h.handle, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_NOT_SUPPORTED);
    cublasPointerMode_t mode;
    CHECK(cublasGetPointerMode(h.handle, &mode) == CUBLAS_STATUS_SUCCESS);
    CHECK(mode == CUBLAS_POINTER_MODE_HOST);
    DeviceBuffer<char> workspace(4096);
    CHECK(cublasSetWorkspace(h.handle, workspace.get(), 4096) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetWorkspace(h.handle, workspace.get() + 8, 1024) == CUBLAS_STATUS_INVALID_VALUE);
    int version = 0;
    CHECK(cublasGetVersion(h.handle, &version) == CUBLAS_STATUS_SUCCESS);
    CHECK(version == CUBLAS_VERSION);
    CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) == "CUBLAS_STATUS_INVALID_VALUE");
    CHECK(std::string(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED)).find("not supported") != std::string::npos);
    cublasHandle_t extra = nullptr;
    REQUIRE(cublasCreate(&extra) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasDestroy(extra) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasDestroy(extra) == CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(cudaStreamDestroy(stream) == cudaSuccess);
}

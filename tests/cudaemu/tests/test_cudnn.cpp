// Tests of the emulated cuDNN: convolution forward, backward data and backward filter against
// naive double-precision loops written from the cuDNN definitions (the backward passes as gathers,
// independent of the emulator's scatter), in NCHW and NHWC with padding, stride, dilation, groups,
// CONVOLUTION vs CROSS_CORRELATION and alpha/beta; the adjoint identities
// <conv(x,w), g> = <x, dgrad(w,g)> = <w, wgrad(x,g)>; bias, tensor ops, descriptor validation,
// algorithm queries, workspaces and the TF32 rule of CUDNN_DEFAULT_MATH.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"
#include "cudnn.h"
#include "test_support.h"

using test_support::DeviceBuffer;

namespace {

struct Handle {
    cudnnHandle_t handle = nullptr;
    Handle() { cudnnCreate(&handle); }
    ~Handle() { cudnnDestroy(handle); }
};

struct TensorDesc {
    cudnnTensorDescriptor_t desc = nullptr;
    TensorDesc() { cudnnCreateTensorDescriptor(&desc); }
    ~TensorDesc() { cudnnDestroyTensorDescriptor(desc); }
};

struct FilterDesc {
    cudnnFilterDescriptor_t desc = nullptr;
    FilterDesc() { cudnnCreateFilterDescriptor(&desc); }
    ~FilterDesc() { cudnnDestroyFilterDescriptor(desc); }
};

struct ConvDesc {
    cudnnConvolutionDescriptor_t desc = nullptr;
    ConvDesc() { cudnnCreateConvolutionDescriptor(&desc); }
    ~ConvDesc() { cudnnDestroyConvolutionDescriptor(desc); }
};

// N,C,H,W input; K,C/G,R,S filter; N,K,P,Q output.
struct Shape {
    int N, C, H, W, K, R, S, ph, pw, u, v, dh, dw, G;
    bool flip;
    int Cg() const { return C / G; }
    int P() const { return 1 + (H + 2 * ph - ((R - 1) * dh + 1)) / u; }
    int Q() const { return 1 + (W + 2 * pw - ((S - 1) * dw + 1)) / v; }
    std::size_t x_size() const { return static_cast<std::size_t>(N) * C * H * W; }
    std::size_t w_size() const { return static_cast<std::size_t>(K) * Cg() * R * S; }
    std::size_t y_size() const { return static_cast<std::size_t>(N) * K * P() * Q(); }
};

std::size_t at4(int a, int b, int c, int d, int B, int Cn, int D) {
    return ((static_cast<std::size_t>(a) * B + b) * Cn + c) * D + d;
}

struct Result {
    std::vector<double> value;
    std::vector<double> scale;
};

Result reference_forward(const Shape& s, const std::vector<double>& x, const std::vector<double>& w) {
    Result r{std::vector<double>(s.y_size(), 0.0), std::vector<double>(s.y_size(), 0.0)};
    const int kg = s.K / s.G;
    for (int n = 0; n < s.N; ++n)
        for (int k = 0; k < s.K; ++k)
            for (int p = 0; p < s.P(); ++p)
                for (int q = 0; q < s.Q(); ++q) {
                    double sum = 0.0;
                    double mag = 0.0;
                    for (int c = 0; c < s.Cg(); ++c)
                        for (int rr = 0; rr < s.R; ++rr)
                            for (int ss = 0; ss < s.S; ++ss) {
                                const int h = p * s.u - s.ph + rr * s.dh;
                                const int ww = q * s.v - s.pw + ss * s.dw;
                                if (h < 0 || h >= s.H || ww < 0 || ww >= s.W) continue;
                                const int fr = s.flip ? s.R - 1 - rr : rr;
                                const int fs = s.flip ? s.S - 1 - ss : ss;
                                const double term = x[at4(n, k / kg * s.Cg() + c, h, ww, s.C, s.H, s.W)] *
                                                    w[at4(k, c, fr, fs, s.Cg(), s.R, s.S)];
                                sum += term;
                                mag += std::fabs(term);
                            }
                    r.value[at4(n, k, p, q, s.K, s.P(), s.Q())] = sum;
                    r.scale[at4(n, k, p, q, s.K, s.P(), s.Q())] = mag;
                }
    return r;
}

// dx[n,ci,h,w] gathers every output position whose window covers (h, w).
Result reference_backward_data(const Shape& s, const std::vector<double>& dy, const std::vector<double>& w) {
    Result r{std::vector<double>(s.x_size(), 0.0), std::vector<double>(s.x_size(), 0.0)};
    const int kg = s.K / s.G;
    for (int n = 0; n < s.N; ++n)
        for (int ci = 0; ci < s.C; ++ci)
            for (int h = 0; h < s.H; ++h)
                for (int ww = 0; ww < s.W; ++ww) {
                    double sum = 0.0;
                    double mag = 0.0;
                    const int g = ci / s.Cg();
                    const int c = ci % s.Cg();
                    for (int k = g * kg; k < (g + 1) * kg; ++k)
                        for (int rr = 0; rr < s.R; ++rr)
                            for (int ss = 0; ss < s.S; ++ss) {
                                const int ph = h + s.ph - rr * s.dh;
                                const int pw = ww + s.pw - ss * s.dw;
                                if (ph < 0 || pw < 0 || ph % s.u != 0 || pw % s.v != 0) continue;
                                const int p = ph / s.u;
                                const int q = pw / s.v;
                                if (p >= s.P() || q >= s.Q()) continue;
                                const int fr = s.flip ? s.R - 1 - rr : rr;
                                const int fs = s.flip ? s.S - 1 - ss : ss;
                                const double term = dy[at4(n, k, p, q, s.K, s.P(), s.Q())] * w[at4(k, c, fr, fs, s.Cg(), s.R, s.S)];
                                sum += term;
                                mag += std::fabs(term);
                            }
                    r.value[at4(n, ci, h, ww, s.C, s.H, s.W)] = sum;
                    r.scale[at4(n, ci, h, ww, s.C, s.H, s.W)] = mag;
                }
    return r;
}

Result reference_backward_filter(const Shape& s, const std::vector<double>& x, const std::vector<double>& dy) {
    Result r{std::vector<double>(s.w_size(), 0.0), std::vector<double>(s.w_size(), 0.0)};
    const int kg = s.K / s.G;
    for (int k = 0; k < s.K; ++k)
        for (int c = 0; c < s.Cg(); ++c)
            for (int rr = 0; rr < s.R; ++rr)
                for (int ss = 0; ss < s.S; ++ss) {
                    double sum = 0.0;
                    double mag = 0.0;
                    for (int n = 0; n < s.N; ++n)
                        for (int p = 0; p < s.P(); ++p)
                            for (int q = 0; q < s.Q(); ++q) {
                                const int h = p * s.u - s.ph + rr * s.dh;
                                const int ww = q * s.v - s.pw + ss * s.dw;
                                if (h < 0 || h >= s.H || ww < 0 || ww >= s.W) continue;
                                const double term = dy[at4(n, k, p, q, s.K, s.P(), s.Q())] *
                                                    x[at4(n, k / kg * s.Cg() + c, h, ww, s.C, s.H, s.W)];
                                sum += term;
                                mag += std::fabs(term);
                            }
                    const int fr = s.flip ? s.R - 1 - rr : rr;
                    const int fs = s.flip ? s.S - 1 - ss : ss;
                    r.value[at4(k, c, fr, fs, s.Cg(), s.R, s.S)] = sum;
                    r.scale[at4(k, c, fr, fs, s.Cg(), s.R, s.S)] = mag;
                }
    return r;
}

// Memory offset of logical (a,b,c,d) for a 4-D layout: NCHW, or channels-last NHWC/KRSC.
std::size_t offset_of(bool channels_last, int a, int b, int c, int d, int B, int Cn, int D) {
    if (!channels_last) {
        return at4(a, b, c, d, B, Cn, D);
    }
    return ((static_cast<std::size_t>(a) * Cn + c) * D + d) * B + b;
}

template <class T>
std::vector<T> to_layout(const std::vector<double>& logical, bool channels_last, int A, int B, int Cn, int D) {
    std::vector<T> memory(logical.size());
    for (int a = 0; a < A; ++a)
        for (int b = 0; b < B; ++b)
            for (int c = 0; c < Cn; ++c)
                for (int d = 0; d < D; ++d)
                    memory[offset_of(channels_last, a, b, c, d, B, Cn, D)] = static_cast<T>(logical[at4(a, b, c, d, B, Cn, D)]);
    return memory;
}

template <class T>
std::vector<double> from_layout(const std::vector<T>& memory, bool channels_last, int A, int B, int Cn, int D) {
    std::vector<double> logical(memory.size());
    for (int a = 0; a < A; ++a)
        for (int b = 0; b < B; ++b)
            for (int c = 0; c < Cn; ++c)
                for (int d = 0; d < D; ++d)
                    logical[at4(a, b, c, d, B, Cn, D)] =
                        static_cast<double>(static_cast<float>(memory[offset_of(channels_last, a, b, c, d, B, Cn, D)]));
    return logical;
}

template <>
std::vector<double> from_layout<double>(const std::vector<double>& memory, bool channels_last, int A, int B, int Cn,
                                        int D) {
    std::vector<double> logical(memory.size());
    for (int a = 0; a < A; ++a)
        for (int b = 0; b < B; ++b)
            for (int c = 0; c < Cn; ++c)
                for (int d = 0; d < D; ++d)
                    logical[at4(a, b, c, d, B, Cn, D)] = memory[offset_of(channels_last, a, b, c, d, B, Cn, D)];
    return logical;
}

std::vector<double> random_logical(std::size_t count, std::uint32_t seed) {
    const std::vector<float> f = test_support::random_floats(count, seed);
    return std::vector<double>(f.begin(), f.end());
}

// Values exactly representable in T (so references computed from them are exact inputs).
template <class T>
std::vector<double> representable(const std::vector<double>& values) {
    std::vector<double> out(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        out[i] = static_cast<double>(static_cast<float>(static_cast<T>(values[i])));
    }
    return out;
}

template <>
std::vector<double> representable<double>(const std::vector<double>& values) {
    return values;
}

template <class T>
cudnnDataType_t data_type();
template <>
cudnnDataType_t data_type<float>() { return CUDNN_DATA_FLOAT; }
template <>
cudnnDataType_t data_type<double>() { return CUDNN_DATA_DOUBLE; }
template <>
cudnnDataType_t data_type<__half>() { return CUDNN_DATA_HALF; }
template <>
cudnnDataType_t data_type<__nv_bfloat16>() { return CUDNN_DATA_BFLOAT16; }

// Descriptors and device buffers of one convolution problem.
template <class T>
struct Problem {
    Shape s;
    bool nhwc;
    TensorDesc x_desc, y_desc;
    FilterDesc w_desc;
    ConvDesc conv;
    DeviceBuffer<T> x, w, y;

    Problem(const Shape& shape, bool channels_last, cudnnMathType_t math = CUDNN_FMA_MATH)
        : s(shape), nhwc(channels_last), x(shape.x_size()), w(shape.w_size()), y(shape.y_size()) {
        const cudnnTensorFormat_t format = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
        const cudnnDataType_t type = data_type<T>();
        const cudnnDataType_t compute = type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
        REQUIRE(cudnnSetTensor4dDescriptor(x_desc.desc, format, type, s.N, s.C, s.H, s.W) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetFilter4dDescriptor(w_desc.desc, type, format, s.K, s.Cg(), s.R, s.S) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetConvolution2dDescriptor(conv.desc, s.ph, s.pw, s.u, s.v, s.dh, s.dw,
                                                s.flip ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                                compute) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetConvolutionGroupCount(conv.desc, s.G) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetConvolutionMathType(conv.desc, math) == CUDNN_STATUS_SUCCESS);
        int n = 0, c = 0, h = 0, wd = 0;
        REQUIRE(cudnnGetConvolution2dForwardOutputDim(conv.desc, x_desc.desc, w_desc.desc, &n, &c, &h, &wd) ==
                CUDNN_STATUS_SUCCESS);
        REQUIRE(n == s.N);
        REQUIRE(c == s.K);
        REQUIRE(h == s.P());
        REQUIRE(wd == s.Q());
        REQUIRE(cudnnSetTensor4dDescriptor(y_desc.desc, format, type, n, c, h, wd) == CUDNN_STATUS_SUCCESS);
    }

    void upload_x(const std::vector<double>& logical) { x.upload(to_layout<T>(logical, nhwc, s.N, s.C, s.H, s.W)); }
    void upload_w(const std::vector<double>& logical) { w.upload(to_layout<T>(logical, nhwc, s.K, s.Cg(), s.R, s.S)); }
    void upload_y(const std::vector<double>& logical) { y.upload(to_layout<T>(logical, nhwc, s.N, s.K, s.P(), s.Q())); }
    std::vector<double> x_logical() const { return from_layout(x.download(), nhwc, s.N, s.C, s.H, s.W); }
    std::vector<double> w_logical() const { return from_layout(w.download(), nhwc, s.K, s.Cg(), s.R, s.S); }
    std::vector<double> y_logical() const { return from_layout(y.download(), nhwc, s.N, s.K, s.P(), s.Q()); }
};

// alpha*result + beta*old, with the scale grown by |beta*old|.
Result blended(const Result& r, double alpha, double beta, const std::vector<double>& old) {
    Result out = r;
    for (std::size_t i = 0; i < out.value.size(); ++i) {
        out.value[i] = alpha * r.value[i] + (beta != 0.0 ? beta * old[i] : 0.0);
        out.scale[i] = std::max(std::fabs(alpha) * r.scale[i] + (beta != 0.0 ? std::fabs(beta * old[i]) : 0.0), 1e-30);
    }
    return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        s += a[i] * b[i];
    }
    return s;
}

const Shape kShapes[] = {
    // N C  H  W  K  R  S ph pw u  v dh dw G flip
    {2, 3, 7, 6, 4, 3, 2, 1, 0, 2, 1, 1, 2, 1, false},
    {1, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true},
    {2, 2, 9, 5, 3, 2, 3, 2, 1, 3, 2, 2, 1, 1, true},
    {1, 3, 5, 5, 2, 1, 1, 0, 0, 1, 1, 1, 1, 1, false},
};

template <class T>
void check_all_passes(const Shape& s, bool nhwc, double tolerance) {
    Handle h;
    Problem<T> pb(s, nhwc);
    const std::vector<double> x = representable<T>(random_logical(s.x_size(), 101));
    const std::vector<double> w = representable<T>(random_logical(s.w_size(), 102));
    const std::vector<double> y0 = representable<T>(random_logical(s.y_size(), 103));
    const std::vector<double> dy = representable<T>(random_logical(s.y_size(), 104));
    const std::vector<double> dx0 = representable<T>(random_logical(s.x_size(), 105));
    const std::vector<double> dw0 = representable<T>(random_logical(s.w_size(), 106));
    const bool is_double = std::is_same_v<T, double>;
    const float alpha_f = 1.5f;
    const float beta_f = -0.5f;
    const double alpha_d = 1.5;
    const double beta_d = -0.5;
    const void* alpha = is_double ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha_f);
    const void* beta = is_double ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
    const float zero_f = 0.0f;
    const double zero_d = 0.0;
    const void* zero = is_double ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);

    // Forward with beta = 0 over NaN-filled y, then with alpha/beta blending.
    pb.upload_x(x);
    pb.upload_w(w);
    REQUIRE(cudnnConvolutionForward(h.handle, alpha, pb.x_desc.desc, pb.x.get(), pb.w_desc.desc, pb.w.get(), pb.conv.desc,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, zero, pb.y_desc.desc,
                                    pb.y.get()) == CUDNN_STATUS_SUCCESS);
    const Result fwd = reference_forward(s, x, w);
    auto cmp = test_support::compare(pb.y_logical(), blended(fwd, 1.5, 0.0, y0).value, blended(fwd, 1.5, 0.0, y0).scale,
                                     tolerance);
    INFO("forward beta=0: " << cmp.describe());
    CHECK(cmp.ok);
    pb.upload_y(y0);
    REQUIRE(cudnnConvolutionForward(h.handle, alpha, pb.x_desc.desc, pb.x.get(), pb.w_desc.desc, pb.w.get(), pb.conv.desc,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, beta, pb.y_desc.desc,
                                    pb.y.get()) == CUDNN_STATUS_SUCCESS);
    const Result fwd_blend = blended(fwd, 1.5, -0.5, y0);
    cmp = test_support::compare(pb.y_logical(), fwd_blend.value, fwd_blend.scale, tolerance);
    INFO("forward alpha/beta: " << cmp.describe());
    CHECK(cmp.ok);

    // Backward data.
    pb.upload_y(dy);
    pb.upload_x(dx0);
    REQUIRE(cudnnConvolutionBackwardData(h.handle, alpha, pb.w_desc.desc, pb.w.get(), pb.y_desc.desc, pb.y.get(),
                                         pb.conv.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, nullptr, 0, beta,
                                         pb.x_desc.desc, pb.x.get()) == CUDNN_STATUS_SUCCESS);
    const Result bwd_data = blended(reference_backward_data(s, dy, w), 1.5, -0.5, dx0);
    cmp = test_support::compare(pb.x_logical(), bwd_data.value, bwd_data.scale, tolerance);
    INFO("backward data: " << cmp.describe());
    CHECK(cmp.ok);

    // Backward filter (ALGO_0 needs no workspace).
    pb.upload_x(x);
    pb.upload_w(dw0);
    REQUIRE(cudnnConvolutionBackwardFilter(h.handle, alpha, pb.x_desc.desc, pb.x.get(), pb.y_desc.desc, pb.y.get(),
                                           pb.conv.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, beta,
                                           pb.w_desc.desc, pb.w.get()) == CUDNN_STATUS_SUCCESS);
    const Result bwd_filter = blended(reference_backward_filter(s, x, dy), 1.5, -0.5, dw0);
    cmp = test_support::compare(pb.w_logical(), bwd_filter.value, bwd_filter.scale, tolerance);
    INFO("backward filter: " << cmp.describe());
    CHECK(cmp.ok);
}

}  // namespace

TEST_CASE("convolution forward/backward match naive loops (float, NCHW and NHWC)", "[cudaemu][cudnn]") {
    for (const Shape& s : kShapes) {
        for (bool nhwc : {false, true}) {
            DYNAMIC_SECTION("shape C" << s.C << " K" << s.K << " R" << s.R << "x" << s.S << " stride " << s.u << "," << s.v
                                      << " dil " << s.dh << "," << s.dw << " G" << s.G << (s.flip ? " conv" : " xcorr")
                                      << (nhwc ? " NHWC" : " NCHW")) {
                check_all_passes<float>(s, nhwc, test_support::kFloatTolerance);
            }
        }
    }
}

TEST_CASE("convolution passes in double precision match naive loops", "[cudaemu][cudnn]") {
    for (const Shape& s : kShapes) {
        DYNAMIC_SECTION("shape C" << s.C << " K" << s.K << " G" << s.G) {
            check_all_passes<double>(s, false, test_support::kDoubleTolerance);
        }
    }
}

TEST_CASE("half and bfloat16 convolutions accumulate in float", "[cudaemu][cudnn]") {
    check_all_passes<__half>(kShapes[1], true, test_support::kHalfTolerance);
    check_all_passes<__nv_bfloat16>(kShapes[0], false, test_support::kBfloat16Tolerance);
}

TEST_CASE("bfloat16 convolutions store their float result rounded to nearest even", "[cudaemu][cudnn]") {
    // PSEUDO_BFLOAT16_CONFIG (bf16 tensors, float compute), NHWC as strata uses it: each pass's
    // bf16 output must be the float configuration's output for the same bf16 operands, alpha, beta
    // and prior output, rounded to the nearest bf16 (ties to even) once, at the store.
    const Shape& s = kShapes[1];
    const std::vector<double> x = representable<__nv_bfloat16>(random_logical(s.x_size(), 111));
    const std::vector<double> w = representable<__nv_bfloat16>(random_logical(s.w_size(), 112));
    const std::vector<double> dy = representable<__nv_bfloat16>(random_logical(s.y_size(), 113));
    const std::vector<double> prior_x = representable<__nv_bfloat16>(random_logical(s.x_size(), 114));
    const std::vector<double> prior_w = representable<__nv_bfloat16>(random_logical(s.w_size(), 115));
    const std::vector<double> prior_y = representable<__nv_bfloat16>(random_logical(s.y_size(), 116));
    const float alpha = 1.5f;
    const float beta = -0.5f;
    Handle h;
    Problem<float> wide(s, true);
    Problem<__nv_bfloat16> narrow(s, true, CUDNN_DEFAULT_MATH);
    auto check_rounded = [](const char* pass, const std::vector<double>& wide_out,
                            const std::vector<double>& narrow_out) {
        REQUIRE(wide_out.size() == narrow_out.size());
        int truncation_differs = 0;
        for (std::size_t i = 0; i < wide_out.size(); ++i) {
            const float f = static_cast<float>(wide_out[i]);
            INFO(pass << " element " << i << ": float result " << f << ", bf16 result " << narrow_out[i]);
            REQUIRE(narrow_out[i] == static_cast<double>(__bfloat162float(__float2bfloat16_rn(f))));
            std::uint32_t bits = 0;
            std::memcpy(&bits, &f, sizeof bits);
            std::uint32_t truncated = bits & 0xffff0000u;
            float t = 0.0f;
            std::memcpy(&t, &truncated, sizeof t);
            truncation_differs += narrow_out[i] != static_cast<double>(t);
        }
        // Some outputs round up, so a store that truncated would fail the check above.
        CHECK(truncation_differs > 0);
    };
    const auto forward = [&](auto& pb) {
        pb.upload_x(x);
        pb.upload_w(w);
        pb.upload_y(prior_y);
        REQUIRE(cudnnConvolutionForward(h.handle, &alpha, pb.x_desc.desc, pb.x.get(), pb.w_desc.desc, pb.w.get(),
                                        pb.conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &beta,
                                        pb.y_desc.desc, pb.y.get()) == CUDNN_STATUS_SUCCESS);
        return pb.y_logical();
    };
    check_rounded("forward", forward(wide), forward(narrow));
    const auto backward_data = [&](auto& pb) {
        pb.upload_w(w);
        pb.upload_y(dy);
        pb.upload_x(prior_x);
        REQUIRE(cudnnConvolutionBackwardData(h.handle, &alpha, pb.w_desc.desc, pb.w.get(), pb.y_desc.desc, pb.y.get(),
                                             pb.conv.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, nullptr, 0, &beta,
                                             pb.x_desc.desc, pb.x.get()) == CUDNN_STATUS_SUCCESS);
        return pb.x_logical();
    };
    check_rounded("backward data", backward_data(wide), backward_data(narrow));
    const auto backward_filter = [&](auto& pb) {
        pb.upload_x(x);
        pb.upload_y(dy);
        pb.upload_w(prior_w);
        REQUIRE(cudnnConvolutionBackwardFilter(h.handle, &alpha, pb.x_desc.desc, pb.x.get(), pb.y_desc.desc, pb.y.get(),
                                               pb.conv.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &beta,
                                               pb.w_desc.desc, pb.w.get()) == CUDNN_STATUS_SUCCESS);
        return pb.w_logical();
    };
    check_rounded("backward filter", backward_filter(wide), backward_filter(narrow));
}

TEST_CASE("bfloat16 convolutions compute in float only (no TRUE_BFLOAT16 configuration)", "[cudaemu][cudnn]") {
    const Shape& s = kShapes[1];
    Handle h;
    Problem<__nv_bfloat16> pb(s, true, CUDNN_DEFAULT_MATH);
    pb.upload_x(representable<__nv_bfloat16>(random_logical(s.x_size(), 117)));
    pb.upload_w(representable<__nv_bfloat16>(random_logical(s.w_size(), 118)));
    REQUIRE(cudnnSetConvolution2dDescriptor(pb.conv.desc, s.ph, s.pw, s.u, s.v, s.dh, s.dw, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_BFLOAT16) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionGroupCount(pb.conv.desc, s.G) == CUDNN_STATUS_SUCCESS);
    const float one = 1.0f;
    const float zero = 0.0f;
    CHECK(cudnnConvolutionForward(h.handle, &one, pb.x_desc.desc, pb.x.get(), pb.w_desc.desc, pb.w.get(), pb.conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, pb.y_desc.desc,
                                  pb.y.get()) == CUDNN_STATUS_NOT_SUPPORTED);
}

TEST_CASE("CONVOLUTION mode is cross-correlation with the flipped filter", "[cudaemu][cudnn]") {
    Handle h;
    Shape s = kShapes[0];
    s.flip = true;
    Problem<double> conv(s, false);
    s.flip = false;
    Problem<double> xcorr(s, false);
    const std::vector<double> x = random_logical(s.x_size(), 201);
    const std::vector<double> w = random_logical(s.w_size(), 202);
    std::vector<double> flipped(w.size());
    for (int k = 0; k < s.K; ++k)
        for (int c = 0; c < s.Cg(); ++c)
            for (int r = 0; r < s.R; ++r)
                for (int q = 0; q < s.S; ++q)
                    flipped[at4(k, c, s.R - 1 - r, s.S - 1 - q, s.Cg(), s.R, s.S)] = w[at4(k, c, r, q, s.Cg(), s.R, s.S)];
    conv.upload_x(x);
    conv.upload_w(w);
    xcorr.upload_x(x);
    xcorr.upload_w(flipped);
    const double one = 1.0;
    const double zero = 0.0;
    REQUIRE(cudnnConvolutionForward(h.handle, &one, conv.x_desc.desc, conv.x.get(), conv.w_desc.desc, conv.w.get(),
                                    conv.conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                    conv.y_desc.desc, conv.y.get()) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionForward(h.handle, &one, xcorr.x_desc.desc, xcorr.x.get(), xcorr.w_desc.desc, xcorr.w.get(),
                                    xcorr.conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                    xcorr.y_desc.desc, xcorr.y.get()) == CUDNN_STATUS_SUCCESS);
    CHECK(conv.y.download() == xcorr.y.download());
    // And the two modes really differ for a non-symmetric filter.
    REQUIRE(cudnnConvolutionForward(h.handle, &one, xcorr.x_desc.desc, xcorr.x.get(), xcorr.w_desc.desc, conv.w.get(),
                                    xcorr.conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                    xcorr.y_desc.desc, xcorr.y.get()) == CUDNN_STATUS_SUCCESS);
    CHECK(conv.y.download() != xcorr.y.download());
}

TEST_CASE("backward passes are the adjoints of the forward convolution", "[cudaemu][cudnn]") {
    Handle h;
    for (const Shape& s : kShapes) {
        for (bool nhwc : {false, true}) {
            Problem<double> pb(s, nhwc);
            const std::vector<double> x = random_logical(s.x_size(), 301);
            const std::vector<double> w = random_logical(s.w_size(), 302);
            const std::vector<double> g = random_logical(s.y_size(), 303);
            const double one = 1.0;
            const double zero = 0.0;
            pb.upload_x(x);
            pb.upload_w(w);
            REQUIRE(cudnnConvolutionForward(h.handle, &one, pb.x_desc.desc, pb.x.get(), pb.w_desc.desc, pb.w.get(),
                                            pb.conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                            pb.y_desc.desc, pb.y.get()) == CUDNN_STATUS_SUCCESS);
            const double conv_dot_g = dot(pb.y_logical(), g);
            pb.upload_y(g);
            REQUIRE(cudnnConvolutionBackwardData(h.handle, &one, pb.w_desc.desc, pb.w.get(), pb.y_desc.desc, pb.y.get(),
                                                 pb.conv.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero,
                                                 pb.x_desc.desc, pb.x.get()) == CUDNN_STATUS_SUCCESS);
            const double x_dot_dgrad = dot(x, pb.x_logical());
            pb.upload_x(x);
            REQUIRE(cudnnConvolutionBackwardFilter(h.handle, &one, pb.x_desc.desc, pb.x.get(), pb.y_desc.desc, pb.y.get(),
                                                   pb.conv.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero,
                                                   pb.w_desc.desc, pb.w.get()) == CUDNN_STATUS_SUCCESS);
            const double w_dot_wgrad = dot(w, pb.w_logical());
            INFO("C" << s.C << " G" << s.G << (nhwc ? " NHWC" : " NCHW") << ": <conv(x),g> = " << conv_dot_g
                     << ", <x,dgrad(g)> = " << x_dot_dgrad << ", <w,wgrad(x,g)> = " << w_dot_wgrad);
            const double scale = std::fabs(conv_dot_g) + 1.0;
            CHECK(std::fabs(conv_dot_g - x_dot_dgrad) <= 1e-12 * scale);
            CHECK(std::fabs(conv_dot_g - w_dot_wgrad) <= 1e-12 * scale);
        }
    }
}

TEST_CASE("backward bias, add tensor with broadcasting, set and scale tensor", "[cudaemu][cudnn]") {
    Handle h;
    const int N = 3, K = 5, P = 4, Q = 6;
    const std::vector<float> dy = test_support::random_floats(static_cast<std::size_t>(N) * K * P * Q, 401);
    TensorDesc dy_desc, db_desc;
    REQUIRE(cudnnSetTensor4dDescriptor(dy_desc.desc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, K, P, Q) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetTensor4dDescriptor(db_desc.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 1, 1) ==
            CUDNN_STATUS_SUCCESS);
    DeviceBuffer<float> ddy(dy.size()), ddb(K);
    ddy.upload(dy);  // NHWC memory: channel innermost
    const float one = 1.0f;
    const float zero = 0.0f;
    REQUIRE(cudnnConvolutionBackwardBias(h.handle, &one, dy_desc.desc, ddy.get(), &zero, db_desc.desc, ddb.get()) ==
            CUDNN_STATUS_SUCCESS);
    const std::vector<float> db = ddb.download();
    for (int k = 0; k < K; ++k) {
        double sum = 0.0;
        double mag = 0.0;
        for (std::size_t i = static_cast<std::size_t>(k); i < dy.size(); i += K) {
            sum += dy[i];
            mag += std::fabs(dy[i]);
        }
        REQUIRE(std::fabs(db[k] - sum) <= test_support::kFloatTolerance * mag);
    }

    // C (N,K,P,Q NCHW) = 2*bias(1,K,1,1) + 0.5*C.
    TensorDesc c_desc;
    REQUIRE(cudnnSetTensor4dDescriptor(c_desc.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, K, P, Q) == CUDNN_STATUS_SUCCESS);
    const std::vector<float> c0 = test_support::random_floats(dy.size(), 402);
    const std::vector<float> bias = test_support::random_floats(K, 403);
    DeviceBuffer<float> dc(c0.size()), dbias(K);
    dc.upload(c0);
    dbias.upload(bias);
    const float two = 2.0f;
    const float one_half = 0.5f;
    REQUIRE(cudnnAddTensor(h.handle, &two, db_desc.desc, dbias.get(), &one_half, c_desc.desc, dc.get()) == CUDNN_STATUS_SUCCESS);
    std::vector<float> c = dc.download();
    for (std::size_t i = 0; i < c.size(); ++i) {
        const int k = static_cast<int>(i / (P * Q) % K);
        REQUIRE(c[i] == 2.0f * bias[k] + 0.5f * c0[i]);
    }
    DeviceBuffer<float> fresh(c0.size());  // NaN: beta = 0 must not read it
    REQUIRE(cudnnAddTensor(h.handle, &one, db_desc.desc, dbias.get(), &zero, c_desc.desc, fresh.get()) == CUDNN_STATUS_SUCCESS);
    c = fresh.download();
    for (std::size_t i = 0; i < c.size(); ++i) {
        REQUIRE(c[i] == bias[i / (P * Q) % K]);
    }
    TensorDesc wrong;
    REQUIRE(cudnnSetTensor4dDescriptor(wrong.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 2, 1) == CUDNN_STATUS_SUCCESS);
    CHECK(cudnnAddTensor(h.handle, &one, wrong.desc, dbias.get(), &zero, c_desc.desc, dc.get()) == CUDNN_STATUS_BAD_PARAM);

    const float value = 3.25f;
    REQUIRE(cudnnSetTensor(h.handle, c_desc.desc, dc.get(), &value) == CUDNN_STATUS_SUCCESS);
    const float factor = -2.0f;
    REQUIRE(cudnnScaleTensor(h.handle, c_desc.desc, dc.get(), &factor) == CUDNN_STATUS_SUCCESS);
    for (float v : dc.download()) {
        REQUIRE(v == -6.5f);
    }
}

TEST_CASE("descriptor and argument validation returns the documented status", "[cudaemu][cudnn]") {
    Handle h;
    TensorDesc x, y, bad;
    FilterDesc w;
    ConvDesc conv;
    CHECK(cudnnSetTensor4dDescriptor(bad.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 0, 4, 4) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnSetTensor4dDescriptor(bad.desc, CUDNN_TENSOR_NCHW_VECT_C, CUDNN_DATA_FLOAT, 1, 4, 4, 4) ==
          CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnSetTensor4dDescriptorEx(bad.desc, CUDNN_DATA_FLOAT, 1, 4, 4, 4, 64, 16, 4, 0) == CUDNN_STATUS_BAD_PARAM);
    const int dims2[2] = {4, 4};
    const int strides2[2] = {4, 1};
    CHECK(cudnnSetTensorNdDescriptor(bad.desc, CUDNN_DATA_FLOAT, 2, dims2, strides2) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnSetConvolution2dDescriptor(conv.desc, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnSetConvolution2dDescriptor(conv.desc, 0, 0, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnSetConvolutionGroupCount(conv.desc, 0) == CUDNN_STATUS_BAD_PARAM);

    REQUIRE(cudnnSetTensor4dDescriptor(x.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 8, 8) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetFilter4dDescriptor(w.desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 3, 3, 3) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolution2dDescriptor(conv.desc, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
            CUDNN_STATUS_SUCCESS);
    int n, c, hh, ww;
    CHECK(cudnnGetConvolution2dForwardOutputDim(conv.desc, x.desc, w.desc, &n, &c, &hh, &ww) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetFilter4dDescriptor(w.desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 4, 3, 3) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(conv.desc, x.desc, w.desc, &n, &c, &hh, &ww) == CUDNN_STATUS_SUCCESS);
    CHECK((n == 2 && c == 6 && hh == 8 && ww == 8));
    int out_dims[4];
    REQUIRE(cudnnGetConvolutionNdForwardOutputDim(conv.desc, x.desc, w.desc, 4, out_dims) == CUDNN_STATUS_SUCCESS);
    CHECK((out_dims[0] == 2 && out_dims[1] == 6 && out_dims[2] == 8 && out_dims[3] == 8));

    DeviceBuffer<float> dx(2 * 4 * 64), dw(6 * 4 * 9), dy(2 * 6 * 64);
    const float one = 1.0f;
    const float zero = 0.0f;
    // Output with the wrong channel count, wrong spatial size, wrong data type.
    REQUIRE(cudnnSetTensor4dDescriptor(y.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 5, 8, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetTensor4dDescriptor(y.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 7, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_NOT_SUPPORTED);
    REQUIRE(cudnnSetTensor4dDescriptor(y.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 6, 8, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetTensor4dDescriptor(y.desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 8, 8) == CUDNN_STATUS_SUCCESS);
    // Unsupported configuration: float data with a double compute type.
    ConvDesc conv_double;
    REQUIRE(cudnnSetConvolution2dDescriptor(conv_double.desc, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_DOUBLE) == CUDNN_STATUS_SUCCESS);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv_double.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_NOT_SUPPORTED);
    // A host pointer where device memory is required; a too-small output buffer; null handle.
    std::vector<float> host(2 * 4 * 64);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, host.data(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_EXECUTION_FAILED);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dx.get()) == CUDNN_STATUS_EXECUTION_FAILED);
    CHECK(cudnnConvolutionForward(nullptr, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionForward(h.handle, &one, x.desc, dx.get(), w.desc, dw.get(), conv.desc,
                                  static_cast<cudnnConvolutionFwdAlgo_t>(42), nullptr, 0, &zero, y.desc,
                                  dy.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)) == "CUDNN_STATUS_BAD_PARAM");
    CHECK(cudnnGetVersion() == CUDNN_VERSION);
    cudnnDataType_t type;
    int strides[4];
    REQUIRE(cudnnGetTensor4dDescriptor(x.desc, &type, &n, &c, &hh, &ww, &strides[0], &strides[1], &strides[2],
                                       &strides[3]) == CUDNN_STATUS_SUCCESS);
    CHECK((type == CUDNN_DATA_FLOAT && strides[0] == 256 && strides[1] == 64 && strides[2] == 8 && strides[3] == 1));
    std::size_t bytes = 0;
    REQUIRE(cudnnGetTensorSizeInBytes(x.desc, &bytes) == CUDNN_STATUS_SUCCESS);
    CHECK(bytes == 2 * 4 * 64 * sizeof(float));
}

TEST_CASE("algorithm queries rank supported algorithms and size their workspaces", "[cudaemu][cudnn]") {
    Handle h;
    int count = 0;
    REQUIRE(cudnnGetConvolutionForwardAlgorithmMaxCount(h.handle, &count) == CUDNN_STATUS_SUCCESS);
    CHECK(count == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    REQUIRE(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h.handle, &count) == CUDNN_STATUS_SUCCESS);
    CHECK(count == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h.handle, &count) == CUDNN_STATUS_SUCCESS);
    CHECK(count == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);

    // 3x3, unit stride: FFT and Winograd apply. Strided and dilated: they do not.
    const Shape unit{2, 4, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, false};
    const Shape strided{2, 4, 12, 12, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1, false};
    Problem<float> a(unit, false);
    Problem<float> b(strided, false);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(h.handle, a.x_desc.desc, a.w_desc.desc, a.conv.desc, a.y_desc.desc,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(returned == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    CHECK(perf[0].status == CUDNN_STATUS_SUCCESS);
    bool seen_failure = false;
    bool fft_supported = false;
    for (int i = 0; i < returned; ++i) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) {
            seen_failure = true;
        } else {
            CHECK_FALSE(seen_failure);  // supported ones come first
        }
        if (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT) {
            fft_supported = perf[i].status == CUDNN_STATUS_SUCCESS;
        }
        if (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT) {
            CHECK(perf[i].status == CUDNN_STATUS_NOT_SUPPORTED);
        }
        CHECK(perf[i].mathType == CUDNN_FMA_MATH);
    }
    CHECK(fft_supported);
    REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(h.handle, b.x_desc.desc, b.w_desc.desc, b.conv.desc, b.y_desc.desc,
                                                   3, &returned, perf) == CUDNN_STATUS_SUCCESS);
    CHECK(returned == 3);
    std::size_t bytes = 0;
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(h.handle, b.x_desc.desc, b.w_desc.desc, b.conv.desc, b.y_desc.desc,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_FFT, &bytes) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(h.handle, b.x_desc.desc, b.w_desc.desc, b.conv.desc, b.y_desc.desc,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, &bytes) == CUDNN_STATUS_NOT_SUPPORTED);
    const float one = 1.0f;
    const float zero = 0.0f;
    CHECK(cudnnConvolutionForward(h.handle, &one, b.x_desc.desc, b.x.get(), b.w_desc.desc, b.w.get(), b.conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_FFT, nullptr, 0, &zero, b.y_desc.desc,
                                  b.y.get()) == CUDNN_STATUS_NOT_SUPPORTED);

    // FFT on the unit-stride problem needs a workspace: too small is BAD_PARAM, enough works and
    // the result equals IMPLICIT_GEMM's. The workspace is scratch and is overwritten.
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(h.handle, a.x_desc.desc, a.w_desc.desc, a.conv.desc, a.y_desc.desc,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_FFT, &bytes) == CUDNN_STATUS_SUCCESS);
    REQUIRE(bytes > 0);
    a.upload_x(random_logical(unit.x_size(), 501));
    a.upload_w(random_logical(unit.w_size(), 502));
    DeviceBuffer<unsigned char> workspace(bytes);
    REQUIRE(cudaMemset(workspace.get(), 0, bytes) == cudaSuccess);
    CHECK(cudnnConvolutionForward(h.handle, &one, a.x_desc.desc, a.x.get(), a.w_desc.desc, a.w.get(), a.conv.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_FFT, workspace.get(), bytes - 1, &zero, a.y_desc.desc,
                                  a.y.get()) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnConvolutionForward(h.handle, &one, a.x_desc.desc, a.x.get(), a.w_desc.desc, a.w.get(), a.conv.desc,
                                    CUDNN_CONVOLUTION_FWD_ALGO_FFT, workspace.get(), bytes, &zero, a.y_desc.desc,
                                    a.y.get()) == CUDNN_STATUS_SUCCESS);
    const std::vector<float> via_fft = a.y.download();
    CHECK(workspace.download()[bytes / 2] == 0xFF);
    REQUIRE(cudnnConvolutionForward(h.handle, &one, a.x_desc.desc, a.x.get(), a.w_desc.desc, a.w.get(), a.conv.desc,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, a.y_desc.desc,
                                    a.y.get()) == CUDNN_STATUS_SUCCESS);
    CHECK(a.y.download() == via_fft);

    // Find with a limited workspace: successes first, sorted by time, none above the limit.
    const std::size_t limit = 4096;
    DeviceBuffer<unsigned char> small(limit);
    REQUIRE(cudnnFindConvolutionForwardAlgorithmEx(h.handle, a.x_desc.desc, a.x.get(), a.w_desc.desc, a.w.get(),
                                                   a.conv.desc, a.y_desc.desc, a.y.get(),
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, small.get(),
                                                   limit) == CUDNN_STATUS_SUCCESS);
    CHECK(returned == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    float last_time = 0.0f;
    bool seen_alloc_failure = false;
    for (int i = 0; i < returned; ++i) {
        if (perf[i].status == CUDNN_STATUS_SUCCESS) {
            CHECK(perf[i].time >= last_time);
            CHECK(perf[i].memory <= limit);
            last_time = perf[i].time;
        } else if (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT) {
            CHECK(perf[i].status == CUDNN_STATUS_ALLOC_FAILED);
            seen_alloc_failure = true;
        }
    }
    CHECK(seen_alloc_failure);
    CHECK(a.y.download() == via_fft);

    cudnnConvolutionBwdDataAlgoPerf_t data_perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    REQUIRE(cudnnGetConvolutionBackwardDataAlgorithm_v7(h.handle, b.w_desc.desc, b.y_desc.desc, b.conv.desc,
                                                        b.x_desc.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned,
                                                        data_perf) == CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < returned; ++i) {
        if (data_perf[i].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) {
            CHECK(data_perf[i].determinism == CUDNN_NON_DETERMINISTIC);
        }
        if (data_perf[i].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED) {
            CHECK(data_perf[i].status == CUDNN_STATUS_NOT_SUPPORTED);
        }
    }
    REQUIRE(cudnnFindConvolutionBackwardDataAlgorithmEx(h.handle, a.w_desc.desc, a.w.get(), a.y_desc.desc, a.y.get(),
                                                        a.conv.desc, a.x_desc.desc, a.x.get(),
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, data_perf,
                                                        nullptr, 0) == CUDNN_STATUS_SUCCESS);
    CHECK(data_perf[0].status == CUDNN_STATUS_SUCCESS);
    CHECK(data_perf[0].memory == 0);

    cudnnConvolutionBwdFilterAlgoPerf_t filter_perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h.handle, a.x_desc.desc, a.y_desc.desc, a.conv.desc,
                                                          a.w_desc.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                          &returned, filter_perf) == CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < returned; ++i) {
        if (filter_perf[i].algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD) {
            CHECK(filter_perf[i].status == CUDNN_STATUS_NOT_SUPPORTED);
        }
    }
    REQUIRE(cudnnGetConvolutionBackwardFilterWorkspaceSize(h.handle, a.x_desc.desc, a.y_desc.desc, a.conv.desc,
                                                           a.w_desc.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                           &bytes) == CUDNN_STATUS_SUCCESS);
    REQUIRE(bytes > 0);
    DeviceBuffer<unsigned char> filter_workspace(bytes);
    CHECK(cudnnConvolutionBackwardFilter(h.handle, &one, a.x_desc.desc, a.x.get(), a.y_desc.desc, a.y.get(), a.conv.desc,
                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, nullptr, 0, &zero, a.w_desc.desc,
                                         a.w.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardFilter(h.handle, &one, a.x_desc.desc, a.x.get(), a.y_desc.desc, a.y.get(), a.conv.desc,
                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, filter_workspace.get(), bytes, &zero,
                                         a.w_desc.desc, a.w.get()) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnFindConvolutionBackwardFilterAlgorithmEx(h.handle, a.x_desc.desc, a.x.get(), a.y_desc.desc, a.y.get(),
                                                          a.conv.desc, a.w_desc.desc, a.w.get(), 2, &returned,
                                                          filter_perf, filter_workspace.get(), bytes) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(returned == 2);
}

TEST_CASE("CUDNN_DEFAULT_MATH may use TF32 for float, CUDNN_FMA_MATH is strict", "[cudaemu][cudnn]") {
    Handle h;
    const Shape s{1, 16, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, false};
    const std::vector<double> x = random_logical(s.x_size(), 601);
    const std::vector<double> w = random_logical(s.w_size(), 602);
    const Result exact = reference_forward(s, x, w);
    const float one = 1.0f;
    const float zero = 0.0f;
    Problem<float> strict(s, false, CUDNN_FMA_MATH);
    Problem<float> fast(s, false, CUDNN_DEFAULT_MATH);
    for (Problem<float>* pb : {&strict, &fast}) {
        pb->upload_x(x);
        pb->upload_w(w);
        REQUIRE(cudnnConvolutionForward(h.handle, &one, pb->x_desc.desc, pb->x.get(), pb->w_desc.desc, pb->w.get(),
                                        pb->conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, nullptr, 0,
                                        &zero, pb->y_desc.desc, pb->y.get()) == CUDNN_STATUS_BAD_PARAM);
    }
    std::size_t bytes = 0;
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(h.handle, strict.x_desc.desc, strict.w_desc.desc, strict.conv.desc,
                                                    strict.y_desc.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                    &bytes) == CUDNN_STATUS_SUCCESS);
    DeviceBuffer<unsigned char> workspace(bytes);
    for (Problem<float>* pb : {&strict, &fast}) {
        REQUIRE(cudnnConvolutionForward(h.handle, &one, pb->x_desc.desc, pb->x.get(), pb->w_desc.desc, pb->w.get(),
                                        pb->conv.desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, workspace.get(),
                                        bytes, &zero, pb->y_desc.desc, pb->y.get()) == CUDNN_STATUS_SUCCESS);
    }
    CHECK(test_support::compare(strict.y_logical(), exact.value, exact.scale, test_support::kFloatTolerance).ok);
    CHECK_FALSE(test_support::compare(fast.y_logical(), exact.value, exact.scale, test_support::kFloatTolerance).ok);
    CHECK(test_support::compare(fast.y_logical(), exact.value, exact.scale, test_support::kTf32Tolerance).ok);
}

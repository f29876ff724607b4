// Helpers shared by the emulator's tests: tolerances (written once, per precision), device buffers,
// random data, a comparison that reports the worst element, and a guard that sets the stream mode.
//
// Comparisons are scale-aware: |got - reference| <= tolerance * scale, where scale is the sum of
// the magnitudes of the terms that produced the reference value (e.g. sum_p |a_ip * b_pj| for a
// GEMM). A recursive sum of k terms in precision u is off by at most about k*u*scale, so each
// tolerance is that bound for the largest k used in these tests (k <= 512) rounded up, plus the
// final rounding of 16-bit outputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "cudaemu/control.h"

namespace test_support {

constexpr double kDoubleTolerance = 1e-12;
constexpr double kFloatTolerance = 4e-5;   // 512 * 2^-24 = 3.1e-5
constexpr double kTf32Tolerance = 4e-3;    // inputs rounded to 2^-11 relative: product error <= 2^-10
constexpr double kHalfTolerance = 2e-3;    // output rounding 2^-11, inputs exact in float
constexpr double kBfloat16Tolerance = 1e-2;  // output rounding 2^-8

template <class T>
class DeviceBuffer {
public:
    explicit DeviceBuffer(std::size_t count) : count_(count) {
        if (cudaMalloc(&data_, count * sizeof(T)) != cudaSuccess) {
            data_ = nullptr;
        }
    }
    ~DeviceBuffer() { cudaFree(data_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    T* get() const { return data_; }
    std::size_t size() const { return count_; }
    void upload(const std::vector<T>& host) const {
        cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
    }
    std::vector<T> download() const {
        std::vector<T> host(count_);
        cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost);
        return host;
    }

private:
    T* data_ = nullptr;
    std::size_t count_;
};

// Sets the stream mode and the deferred mode's schedule seed for one test and restores both after it.
class StreamModeGuard {
public:
    explicit StreamModeGuard(cudaemu::StreamMode mode, std::uint64_t seed = 0) {
        cudaemu::set_stream_mode(mode);
        cudaemu::set_stream_schedule_seed(seed);
    }
    ~StreamModeGuard() {
        cudaemu::set_stream_mode(saved_mode_);
        cudaemu::set_stream_schedule_seed(saved_seed_);
    }
    StreamModeGuard(const StreamModeGuard&) = delete;
    StreamModeGuard& operator=(const StreamModeGuard&) = delete;

private:
    cudaemu::StreamMode saved_mode_ = cudaemu::stream_mode();
    std::uint64_t saved_seed_ = cudaemu::stream_schedule_seed();
};

inline std::vector<float> random_floats(std::size_t count, std::uint32_t seed, float low = -1.0f, float high = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(low, high);
    std::vector<float> values(count);
    for (float& v : values) {
        v = dist(rng);
    }
    return values;
}

struct Comparison {
    bool ok = true;
    double max_abs_error = 0.0;
    double max_rel_error = 0.0;  // error / scale
    std::size_t worst = 0;
    double worst_got = 0.0;
    double worst_expected = 0.0;
    std::size_t count = 0;

    std::string describe() const {
        std::ostringstream out;
        out << "compared " << count << " values: max abs error " << max_abs_error << ", max error/scale "
            << max_rel_error << " at index " << worst << " (got " << worst_got << ", expected " << worst_expected << ")";
        return out.str();
    }
};

// got[i] against expected[i] with |error| <= tolerance * scale[i]; NaN in got always fails.
template <class G>
Comparison compare(const std::vector<G>& got, const std::vector<double>& expected, const std::vector<double>& scale,
                   double tolerance) {
    Comparison c;
    c.count = got.size();
    if (got.size() != expected.size() || got.size() != scale.size()) {
        c.ok = false;
        return c;
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = static_cast<double>(got[i]);
        const double error = std::fabs(g - expected[i]);
        const double relative = error / std::max(scale[i], 1e-30);
        const bool bad = !(error <= tolerance * scale[i]) || std::isnan(g);
        if (bad || relative > c.max_rel_error) {
            if (relative >= c.max_rel_error || bad) {
                c.max_rel_error = std::isnan(g) ? INFINITY : std::max(relative, c.max_rel_error);
                c.worst = i;
                c.worst_got = g;
                c.worst_expected = expected[i];
            }
        }
        c.max_abs_error = std::max(c.max_abs_error, std::isnan(error) ? INFINITY : error);
        if (bad) {
            c.ok = false;
        }
    }
    return c;
}

}  // namespace test_support

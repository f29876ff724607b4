// cudaemu: the CUDA C++ kernel language as far as strata's kernels use it, for compiling .cu
// sources with a host C++ compiler. Semantics follow the CUDA C++ Programming Guide (built-in
// variables, __syncthreads, warp shuffle/vote functions, atomics, math functions) and the PTX ISA
// (exact lane arithmetic of shfl.sync). Kernels run as cooperative fibers, one fiber per GPU
// thread, all threads of a block on one OS thread (see src/scheduler.cpp), so:
//   - threadIdx/blockIdx/blockDim/gridDim are thread_local variables the scheduler rewrites on
//     every fiber switch;
//   - `__shared__` is `static thread_local`: one instance per OS worker thread, and a worker runs
//     one block at a time, so it is shared by exactly the threads of one block;
//   - barriers and warp collectives suspend the calling fiber until their partners arrive, and
//     misuse that would hang or be undefined on a GPU is reported as a launch failure.
#pragma once

#include <math.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "../vector_types.h"

// ---- qualifiers ---------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ __inline__ __attribute__((always_inline))
// Defined after <memory> was included: libstdc++'s shared_ptr_base.h spells the GCC attribute
// `__attribute__((__noinline__))`, which this macro would break if that header came later.
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// Dynamic shared memory. Real CUDA declares it as `extern __shared__ T name[];`, which a macro
// cannot turn into per-block storage, so kernels use this macro in both builds. The nvcc-side
// definition (strata's kernels/cuda/launch.h, see README.md) declares
// `extern __shared__ __align__(16) unsigned char name##_raw[];` and `T* name` pointing to it.
// Here it yields the current block's buffer: 256-byte aligned, as large as the launch's
// dynamic_shared_bytes, filled with 0xFF at block start and guarded against overruns.
#define STRATA_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::cudaemu::detail::dynamic_shared_memory())

// ---- built-in variables -------------------------------------------------------------------------
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
inline constexpr int warpSize = 32;

namespace cudaemu::detail {

enum class WarpOp : int { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all, syncwarp };
enum class BarrierReduce : int { none, count, all, any };

// Implemented by the scheduler. All of them must be called from a kernel thread; called from
// host code they print a message and abort (there is no error code a device function could return).
std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t payload, unsigned payload_bytes,
                              int operand, int width);
unsigned warp_active_mask();
int block_barrier(BarrierReduce reduce, int predicate);
void* dynamic_shared_memory();
[[noreturn]] void kernel_trap(const char* what);
void note_float_atomic_add(const void* address, double addend, bool is_double);
extern std::atomic<bool> g_track_float_atomics;

template <class T>
inline std::uint64_t to_bits(T value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp functions move at most 64 bits");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    return bits;
}

template <class T>
inline T from_bits(std::uint64_t bits) {
    T value;
    std::memcpy(static_cast<void*>(&value), &bits, sizeof(T));
    return value;
}

template <class T>
inline T shuffle(WarpOp op, unsigned mask, T var, int operand, int width) {
    return from_bits<T>(warp_collective(op, mask, to_bits(var), sizeof(T), operand, width));
}

template <class T>
inline void check_atomic_alignment(const T* address) {
    if (reinterpret_cast<std::uintptr_t>(address) % sizeof(T) != 0) {
        kernel_trap("misaligned address passed to an atomic function");
    }
}

template <class T, class Update>
inline T atomic_update(T* address, Update update) {
    check_atomic_alignment(address);
    std::atomic_ref<T> ref(*address);
    T old = ref.load(std::memory_order_relaxed);
    while (!ref.compare_exchange_weak(old, update(old), std::memory_order_relaxed)) {
    }
    return old;
}

}  // namespace cudaemu::detail

// ---- synchronization ----------------------------------------------------------------------------
inline void __syncthreads() { cudaemu::detail::block_barrier(cudaemu::detail::BarrierReduce::none, 0); }
inline int __syncthreads_count(int predicate) {
    return cudaemu::detail::block_barrier(cudaemu::detail::BarrierReduce::count, predicate);
}
inline int __syncthreads_and(int predicate) {
    return cudaemu::detail::block_barrier(cudaemu::detail::BarrierReduce::all, predicate);
}
inline int __syncthreads_or(int predicate) {
    return cudaemu::detail::block_barrier(cudaemu::detail::BarrierReduce::any, predicate);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    cudaemu::detail::warp_collective(cudaemu::detail::WarpOp::syncwarp, mask, 0, 0, 0, warpSize);
}
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { cudaemu::detail::kernel_trap("__trap() called"); }

// ---- warp vote and shuffle ----------------------------------------------------------------------
inline unsigned __activemask() { return cudaemu::detail::warp_active_mask(); }
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    return static_cast<unsigned>(cudaemu::detail::warp_collective(cudaemu::detail::WarpOp::ballot, mask,
                                                                  predicate != 0, 1, 0, warpSize));
}
inline int __any_sync(unsigned mask, int predicate) {
    return static_cast<int>(
        cudaemu::detail::warp_collective(cudaemu::detail::WarpOp::any, mask, predicate != 0, 1, 0, warpSize));
}
inline int __all_sync(unsigned mask, int predicate) {
    return static_cast<int>(
        cudaemu::detail::warp_collective(cudaemu::detail::WarpOp::all, mask, predicate != 0, 1, 0, warpSize));
}

#define CUDAEMU_DEFINE_SHUFFLES(T)                                                                    \
    inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {                   \
        return cudaemu::detail::shuffle(cudaemu::detail::WarpOp::shfl_idx, mask, var, srcLane, width); \
    }                                                                                                 \
    inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {         \
        return cudaemu::detail::shuffle(cudaemu::detail::WarpOp::shfl_up, mask, var,                  \
                                        static_cast<int>(delta), width);                              \
    }                                                                                                 \
    inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {       \
        return cudaemu::detail::shuffle(cudaemu::detail::WarpOp::shfl_down, mask, var,                \
                                        static_cast<int>(delta), width);                              \
    }                                                                                                 \
    inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {              \
        return cudaemu::detail::shuffle(cudaemu::detail::WarpOp::shfl_xor, mask, var, laneMask, width); \
    }

CUDAEMU_DEFINE_SHUFFLES(int)
CUDAEMU_DEFINE_SHUFFLES(unsigned int)
CUDAEMU_DEFINE_SHUFFLES(long)
CUDAEMU_DEFINE_SHUFFLES(unsigned long)
CUDAEMU_DEFINE_SHUFFLES(long long)
CUDAEMU_DEFINE_SHUFFLES(unsigned long long)
CUDAEMU_DEFINE_SHUFFLES(float)
CUDAEMU_DEFINE_SHUFFLES(double)

// ---- atomics (relaxed, as CUDA's atomic functions; they return the old value) -------------------
#define CUDAEMU_DEFINE_INTEGER_ATOMICS(T)                                                       \
    inline T atomicAdd(T* address, T val) {                                                     \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).fetch_add(val, std::memory_order_relaxed);          \
    }                                                                                           \
    inline T atomicSub(T* address, T val) {                                                     \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).fetch_sub(val, std::memory_order_relaxed);          \
    }                                                                                           \
    inline T atomicExch(T* address, T val) {                                                    \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).exchange(val, std::memory_order_relaxed);           \
    }                                                                                           \
    inline T atomicCAS(T* address, T compare, T val) {                                          \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        std::atomic_ref<T>(*address).compare_exchange_strong(compare, val,                      \
                                                             std::memory_order_relaxed);        \
        return compare;                                                                         \
    }                                                                                           \
    inline T atomicMax(T* address, T val) {                                                     \
        return cudaemu::detail::atomic_update(address, [val](T old) { return old < val ? val : old; }); \
    }                                                                                           \
    inline T atomicMin(T* address, T val) {                                                     \
        return cudaemu::detail::atomic_update(address, [val](T old) { return val < old ? val : old; }); \
    }                                                                                           \
    inline T atomicAnd(T* address, T val) {                                                     \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).fetch_and(val, std::memory_order_relaxed);          \
    }                                                                                           \
    inline T atomicOr(T* address, T val) {                                                      \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).fetch_or(val, std::memory_order_relaxed);           \
    }                                                                                           \
    inline T atomicXor(T* address, T val) {                                                     \
        cudaemu::detail::check_atomic_alignment(address);                                       \
        return std::atomic_ref<T>(*address).fetch_xor(val, std::memory_order_relaxed);          \
    }

CUDAEMU_DEFINE_INTEGER_ATOMICS(int)
CUDAEMU_DEFINE_INTEGER_ATOMICS(unsigned int)
CUDAEMU_DEFINE_INTEGER_ATOMICS(unsigned long long)
CUDAEMU_DEFINE_INTEGER_ATOMICS(long long)

inline unsigned short atomicCAS(unsigned short* address, unsigned short compare, unsigned short val) {
    cudaemu::detail::check_atomic_alignment(address);
    std::atomic_ref<unsigned short>(*address).compare_exchange_strong(compare, val, std::memory_order_relaxed);
    return compare;
}

// Floating-point atomicAdd also reports the addend to checking mode, which allows words updated
// this way the rounding difference a changed summation order can cause (see README).
inline float atomicAdd(float* address, float val) {
    cudaemu::detail::check_atomic_alignment(address);
    if (cudaemu::detail::g_track_float_atomics.load(std::memory_order_relaxed)) {
        cudaemu::detail::note_float_atomic_add(address, val, false);
    }
    return std::atomic_ref<float>(*address).fetch_add(val, std::memory_order_relaxed);
}
inline double atomicAdd(double* address, double val) {
    cudaemu::detail::check_atomic_alignment(address);
    if (cudaemu::detail::g_track_float_atomics.load(std::memory_order_relaxed)) {
        cudaemu::detail::note_float_atomic_add(address, val, true);
    }
    return std::atomic_ref<double>(*address).fetch_add(val, std::memory_order_relaxed);
}
inline float atomicExch(float* address, float val) {
    cudaemu::detail::check_atomic_alignment(address);
    return std::atomic_ref<float>(*address).exchange(val, std::memory_order_relaxed);
}

// ---- read-only loads ----------------------------------------------------------------------------
template <class T>
inline T __ldg(const T* address) {
    return *address;
}

// ---- math ---------------------------------------------------------------------------------------
// The fast intrinsics (__expf, __logf, __fdividef, ...) are computed with the accurate functions:
// the emulator cannot reproduce the hardware approximations, so tolerances for them must come from
// the CUDA Programming Guide's error bounds, not from this build.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }

inline int __float_as_int(float x) { return cudaemu::detail::from_bits<int>(cudaemu::detail::to_bits(x)); }
inline unsigned int __float_as_uint(float x) {
    return cudaemu::detail::from_bits<unsigned int>(cudaemu::detail::to_bits(x));
}
inline float __int_as_float(int x) { return cudaemu::detail::from_bits<float>(cudaemu::detail::to_bits(x)); }
inline float __uint_as_float(unsigned int x) {
    return cudaemu::detail::from_bits<float>(cudaemu::detail::to_bits(x));
}
inline long long __double_as_longlong(double x) {
    return cudaemu::detail::from_bits<long long>(cudaemu::detail::to_bits(x));
}
inline double __longlong_as_double(long long x) {
    return cudaemu::detail::from_bits<double>(cudaemu::detail::to_bits(x));
}

inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) {
        r = (r << 1) | ((x >> i) & 1u);
    }
    return r;
}

// CUDA's math_functions.hpp provides these overloads of min/max in the global namespace for host
// and device code; kernels call them unqualified.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline unsigned int min(int a, unsigned int b) { return min(static_cast<unsigned int>(a), b); }
inline unsigned int max(int a, unsigned int b) { return max(static_cast<unsigned int>(a), b); }
inline unsigned int min(unsigned int a, int b) { return min(a, static_cast<unsigned int>(b)); }
inline unsigned int max(unsigned int a, int b) { return max(a, static_cast<unsigned int>(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

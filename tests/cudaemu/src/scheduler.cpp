// cudaemu: kernel launch and execution. A launch is validated as CUDA validates it, then every
// block of the grid runs on one OS worker thread, its blockDim GPU threads as fibers that the
// worker switches between (see fiber.h). A GPU thread runs until it finishes or reaches a
// barrier or warp collective it cannot complete yet; the worker then runs the next ready thread.
// This gives the semantics of the CUDA Programming Guide for what strata's kernels rely on:
//   - __syncthreads(): no thread continues before all threads of the block arrived; every thread of
//     the block must reach it ("allowed in conditional code only if the conditional evaluates
//     identically across the entire thread block") - arriving while others exited is reported;
//   - __shfl*_sync/__ballot_sync/__any_sync/__all_sync/__syncwarp: all lanes named in the mask
//     execute the same function with the same mask; source lanes follow the PTX ISA's shfl.sync
//     rules (segments of `width` lanes, clamping); reading a lane outside the mask, naming lanes
//     that exited or do not exist (partial warp), or mismatched calls are reported;
//   - static and dynamic shared memory shared by the threads of one block only.
// Checking mode runs each launch twice with opposite schedules (threads and blocks in increasing
// order, then in decreasing order) from the same initial memory and compares the results.
// A validated launch is submitted to its stream (streams.cpp), which runs it at once in the eager
// stream mode and later, in stream order, in the deferred mode.
#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cudaemu/control.h"
#include "cudaemu/kernel_lang.h"
#include "cudaemu/launch.h"
#include "fiber.h"
#include "internal.h"

#if CUDAEMU_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace cudaemu::detail {

std::atomic<bool> g_track_float_atomics{false};

namespace {

constexpr unsigned kWarpSize = 32;
constexpr std::size_t kSharedGuardBytes = 64;
constexpr unsigned char kSharedGuardByte = 0xD5;

const char* op_name(WarpOp op) {
    switch (op) {
        case WarpOp::shfl_idx: return "__shfl_sync";
        case WarpOp::shfl_up: return "__shfl_up_sync";
        case WarpOp::shfl_down: return "__shfl_down_sync";
        case WarpOp::shfl_xor: return "__shfl_xor_sync";
        case WarpOp::ballot: return "__ballot_sync";
        case WarpOp::any: return "__any_sync";
        case WarpOp::all: return "__all_sync";
        case WarpOp::syncwarp: return "__syncwarp";
    }
    return "?";
}

bool is_shuffle(WarpOp op) {
    return op == WarpOp::shfl_idx || op == WarpOp::shfl_up || op == WarpOp::shfl_down || op == WarpOp::shfl_xor;
}

// Source lane of shfl.sync (PTX ISA): c = ((32 - width) << 8) | clamp, with clamp 0 for .up and 31
// otherwise; only b[4:0] of the lane operand is used; an out-of-segment source yields the own lane.
unsigned shuffle_source(WarpOp op, unsigned lane, int operand, int width) {
    const unsigned segmask = static_cast<unsigned>(32 - width) & 0x1fu;
    const unsigned clamp = op == WarpOp::shfl_up ? 0u : 0x1fu;
    const unsigned bval = static_cast<unsigned>(operand) & 0x1fu;
    const int max_lane = static_cast<int>((lane & segmask) | (clamp & ~segmask));
    const int min_lane = static_cast<int>(lane & segmask);
    int j = static_cast<int>(lane);
    bool in_range = true;
    switch (op) {
        case WarpOp::shfl_up:
            j = static_cast<int>(lane) - static_cast<int>(bval);
            in_range = j >= max_lane;
            break;
        case WarpOp::shfl_down:
            j = static_cast<int>(lane + bval);
            in_range = j <= max_lane;
            break;
        case WarpOp::shfl_xor:
            j = static_cast<int>(lane ^ bval);
            in_range = j <= max_lane;
            break;
        case WarpOp::shfl_idx:
            j = min_lane | static_cast<int>(bval & ~segmask);
            in_range = j <= max_lane;
            break;
        default:
            break;
    }
    return in_range ? static_cast<unsigned>(j) : lane;
}

std::string kernel_display_name(const KernelLaunch& launch) {
    if (launch.name != nullptr) {
        return launch.name;
    }
    Dl_info info{};
    if (dladdr(launch.address, &info) != 0 && info.dli_sname != nullptr) {
        int status = 0;
        char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
        std::string name = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
        std::free(demangled);
        return name;
    }
    return format("kernel at %p", launch.address);
}

// ---- per-launch state shared by the workers -----------------------------------------------------

struct LaunchState {
    const KernelLaunch* launch = nullptr;
    std::string name;
    std::uint64_t total_blocks = 0;
    unsigned threads_per_block = 0;
    bool reverse = false;
    std::atomic<std::uint64_t> next_block{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    cudaError_t error = cudaSuccess;
    std::string message;

    std::string header() const {
        const KernelLaunch& l = *launch;
        return format("kernel '%s' <<<(%u,%u,%u), (%u,%u,%u), %zu>>>", name.c_str(), l.grid.x, l.grid.y, l.grid.z,
                      l.block.x, l.block.y, l.block.z, l.dynamic_shared_bytes);
    }

    // The first failure wins and is printed; later ones (other blocks) are dropped.
    void fail(cudaError_t code, const std::string& text) {
        std::lock_guard lock(mutex);
        if (error == cudaSuccess) {
            error = code;
            message = text;
            report_error(text);
        }
        failed.store(true);
    }
};

// ---- checking mode: floating-point atomics -----------------------------------------------------

struct FloatAtomicRecord {
    double sum_abs = 0.0;  // |initial value| + sum of |addend|
    std::uint64_t adds = 0;
    bool is_double = false;
};

struct FloatAtomicTables {
    std::unordered_map<std::uintptr_t, FloatAtomicRecord> runs[2];
    int current = 0;
};

FloatAtomicTables& float_atomic_tables() {
    static FloatAtomicTables* instance = new FloatAtomicTables;
    return *instance;
}

// Bound on |computed - exact| for a recursive sum of n additions: gamma_n * sum|terms| with
// gamma_n = n*u / (1 - n*u) (Higham, Accuracy and Stability of Numerical Algorithms, eq. 4.4).
double summation_error_bound(const FloatAtomicRecord& record) {
    const double u = record.is_double ? 0x1p-53 : 0x1p-24;
    const double nu = static_cast<double>(record.adds) * u;
    return nu >= 1.0 ? INFINITY : nu / (1.0 - nu) * record.sum_abs;
}

// ---- the per-worker block runner ----------------------------------------------------------------

enum class ThreadState : unsigned char { not_started, ready, running, at_barrier, at_warp_op, at_activemask, exited };

// Thrown into a GPU thread to unwind its stack when its block is aborted, so that no object on a
// fiber stack is left undestroyed.
struct BlockAborted {};

struct GpuThread {
    uint3 index{};
    unsigned linear = 0;
    ThreadState state = ThreadState::not_started;
    Fiber* fiber = nullptr;
    WarpOp op = WarpOp::syncwarp;
    unsigned mask = 0;
    int operand = 0;
    int width = 32;
    unsigned payload_bytes = 0;
    std::uint64_t payload = 0;
    std::uint64_t result = 0;
};

void gpu_thread_entry(Fiber* fiber);

class BlockRunner {
public:
    BlockRunner() = default;
    BlockRunner(const BlockRunner&) = delete;
    BlockRunner& operator=(const BlockRunner&) = delete;

    void run_blocks(LaunchState& launch);

    // Fiber side.
    void execute_current_thread();
    std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t payload, unsigned payload_bytes,
                                  int operand, int width);
    unsigned active_mask();
    int barrier(BarrierReduce reduce, int predicate);
    void* dynamic_shared() const { return dynamic_shared_; }
    [[noreturn]] void trap(cudaError_t code, const std::string& what);
#if CUDAEMU_ASAN
    // "kernel ..., block ..., thread ..." for the thread running now, or empty outside a kernel.
    std::string current_location() const;
#endif

private:
    void wait(GpuThread& thread);
    void prepare(LaunchState& launch);
    bool run_block(uint3 block_index);
    void on_thread_exit();
    void fail_block(cudaError_t code, const std::string& what, const GpuThread* thread);
    void make_ready(GpuThread& thread);
    Fiber* acquire_fiber();
    void abandon_block();
    bool resolve_active_masks();
    void report_deadlock();
    std::string lane_states(unsigned warp_base, unsigned lanes) const;

    ExecutionContext scheduler_context_;
    std::vector<std::unique_ptr<Fiber>> fibers_;
    std::vector<Fiber*> free_fibers_;
    std::size_t fiber_stack_bytes_ = 0;

    LaunchState* launch_ = nullptr;
    std::vector<GpuThread> threads_;
    std::vector<unsigned> order_;  // schedule order of linear thread ids
    std::vector<unsigned> ready_;
    std::size_t ready_head_ = 0;
    GpuThread* current_ = nullptr;
    unsigned live_ = 0;
    unsigned exited_ = 0;
    unsigned first_exited_ = 0;
    unsigned at_barrier_ = 0;
    BarrierReduce barrier_reduce_ = BarrierReduce::none;
    int barrier_count_ = 0;
    bool block_failed_ = false;
    bool cancelling_ = false;

    std::vector<unsigned char> shared_storage_;
    unsigned char* dynamic_shared_ = nullptr;
    std::size_t dynamic_bytes_ = 0;
};

thread_local BlockRunner* tls_runner = nullptr;

BlockRunner& current_runner(const char* api) {
    BlockRunner* runner = tls_runner;
    if (runner == nullptr) {
        std::fprintf(stderr, "cudaemu: %s called outside a kernel\n", api);
        std::abort();
    }
    return *runner;
}

// Set when the calling thread's BlockRunner has been destroyed. A trivially destructible
// thread_local stays readable until the thread ends.
thread_local bool tls_runner_destroyed = false;

struct ThreadRunner {
    BlockRunner runner;
    ~ThreadRunner() { tls_runner_destroyed = true; }
};

// The calling thread's BlockRunner (reused across launches so its fibers are pooled), or null once
// the thread's thread_local objects are destroyed: at exit, the main thread destroys them before
// the static objects, and a static object's destructor may still run kernels (a context
// synchronizing its stream drains the work the deferred stream mode queued).
BlockRunner* thread_runner() {
    if (tls_runner_destroyed) {
        return nullptr;
    }
    thread_local ThreadRunner owned;
    return &owned.runner;
}

void gpu_thread_entry(Fiber* fiber) {
    auto* runner = static_cast<BlockRunner*>(fiber->owner());
    for (;;) {
        runner->execute_current_thread();
        fiber->suspend();
    }
}

void BlockRunner::prepare(LaunchState& launch) {
    launch_ = &launch;
    const KernelLaunch& l = *launch.launch;
    const unsigned n = launch.threads_per_block;
    threads_.assign(n, GpuThread{});
    for (unsigned i = 0; i < n; ++i) {
        threads_[i].linear = i;
        threads_[i].index = uint3{i % l.block.x, (i / l.block.x) % l.block.y, i / (l.block.x * l.block.y)};
    }
    order_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
        order_[i] = launch.reverse ? n - 1 - i : i;
    }
    dynamic_bytes_ = l.dynamic_shared_bytes;
    shared_storage_.assign(dynamic_bytes_ + 2 * kSharedGuardBytes + kDeviceAlignment, kSharedGuardByte);
    const auto raw = reinterpret_cast<std::uintptr_t>(shared_storage_.data()) + kSharedGuardBytes;
    dynamic_shared_ = reinterpret_cast<unsigned char*>((raw + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment);
    fiber_stack_bytes_ = fiber_stack_bytes();
}

Fiber* BlockRunner::acquire_fiber() {
    if (!free_fibers_.empty()) {
        Fiber* fiber = free_fibers_.back();
        free_fibers_.pop_back();
        return fiber;
    }
    fibers_.push_back(std::make_unique<Fiber>(fiber_stack_bytes_, &gpu_thread_entry, this));
    return fibers_.back().get();
}

void BlockRunner::make_ready(GpuThread& thread) {
    thread.state = ThreadState::ready;
    ready_.push_back(thread.linear);
}

// Suspends the calling GPU thread until the scheduler resumes it; an aborted block resumes its
// waiting threads only to unwind them.
void BlockRunner::wait(GpuThread& thread) {
    thread.fiber->suspend();
    if (cancelling_) {
        throw BlockAborted{};
    }
}

void BlockRunner::run_blocks(LaunchState& launch) {
    BlockRunner* previous = tls_runner;
    tls_runner = this;
    prepare(launch);
    const KernelLaunch& l = *launch.launch;
    const std::uint64_t per_plane = static_cast<std::uint64_t>(l.grid.x) * l.grid.y;
    while (!launch.failed.load(std::memory_order_relaxed)) {
        const std::uint64_t b = launch.next_block.fetch_add(1);
        if (b >= launch.total_blocks) {
            break;
        }
        const std::uint64_t linear = launch.reverse ? launch.total_blocks - 1 - b : b;
        const uint3 block_index{static_cast<unsigned>(linear % l.grid.x),
                                static_cast<unsigned>((linear / l.grid.x) % l.grid.y),
                                static_cast<unsigned>(linear / per_plane)};
        if (!run_block(block_index)) {
            break;
        }
    }
    launch_ = nullptr;
    tls_runner = previous;
}

bool BlockRunner::run_block(uint3 block_index) {
    const KernelLaunch& l = *launch_->launch;
    blockIdx = block_index;
    blockDim = l.block;
    gridDim = l.grid;
    const unsigned n = launch_->threads_per_block;
    for (GpuThread& t : threads_) {
        t.state = ThreadState::not_started;
    }
    ready_.assign(order_.begin(), order_.end());
    ready_head_ = 0;
    live_ = n;
    exited_ = 0;
    at_barrier_ = 0;
    block_failed_ = false;
    std::memset(dynamic_shared_, 0xFF, dynamic_bytes_);
#if CUDAEMU_ASAN
    ASAN_POISON_MEMORY_REGION(dynamic_shared_ + dynamic_bytes_, kSharedGuardBytes);
#endif

    for (;;) {
        while (ready_head_ < ready_.size() && !block_failed_ && !launch_->failed.load(std::memory_order_relaxed)) {
            GpuThread& t = threads_[ready_[ready_head_++]];
            if (ready_head_ == ready_.size()) {
                ready_.clear();
                ready_head_ = 0;
            }
            if (t.fiber == nullptr) {
                t.fiber = acquire_fiber();
            }
            t.state = ThreadState::running;
            current_ = &t;
            threadIdx = t.index;
            t.fiber->resume(scheduler_context_);
            current_ = nullptr;
            if (block_failed_) {
                break;
            }
            if (t.state == ThreadState::exited) {
                if (!t.fiber->stack_intact()) {
                    fail_block(cudaErrorHardwareStackError,
                               format("the thread overflowed its %zu-byte emulation stack (raise CUDAEMU_STACK_KB)",
                                      t.fiber->stack_bytes()),
                               &t);
                    t.fiber->repair_canary();
                    break;
                }
                free_fibers_.push_back(t.fiber);
                t.fiber = nullptr;
            }
        }
        if (block_failed_ || launch_->failed.load(std::memory_order_relaxed)) {
            break;
        }
        if (live_ == 0) {
            break;
        }
        if (resolve_active_masks()) {
            continue;
        }
        report_deadlock();
        break;
    }
#if CUDAEMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(dynamic_shared_ + dynamic_bytes_, kSharedGuardBytes);
#endif
    if (block_failed_ || launch_->failed.load(std::memory_order_relaxed)) {
        abandon_block();
        return false;
    }
    for (std::size_t i = 0; i < kSharedGuardBytes; ++i) {
        if (dynamic_shared_[dynamic_bytes_ + i] != kSharedGuardByte) {
            fail_block(cudaErrorIllegalAddress,
                       format("a thread wrote past the end of the %zu bytes of dynamic shared memory (byte %zu)",
                              dynamic_bytes_, dynamic_bytes_ + i),
                       nullptr);
            std::memset(dynamic_shared_ + dynamic_bytes_, kSharedGuardByte, kSharedGuardBytes);
            return false;
        }
    }
    return true;
}

// Unwinds every thread of a failed block that still has a stack, leaving its fiber reusable.
void BlockRunner::abandon_block() {
    cancelling_ = true;
    for (GpuThread& t : threads_) {
        if (t.fiber == nullptr) {
            continue;
        }
        if (t.state != ThreadState::exited) {
            current_ = &t;
            threadIdx = t.index;
            t.fiber->resume(scheduler_context_);
        }
        free_fibers_.push_back(t.fiber);
        t.fiber = nullptr;
    }
    cancelling_ = false;
    current_ = nullptr;
}

void BlockRunner::execute_current_thread() {
    try {
        launch_->launch->run_thread(launch_->launch->packet);
        on_thread_exit();
    } catch (const BlockAborted&) {
        current_->state = ThreadState::exited;
    } catch (...) {
        current_->state = ThreadState::exited;
        if (!block_failed_) {
            fail_block(cudaErrorLaunchFailure, "the kernel let a C++ exception escape", current_);
        }
    }
}

#if CUDAEMU_ASAN
std::string BlockRunner::current_location() const {
    if (launch_ == nullptr || current_ == nullptr) {
        return {};
    }
    return format("%s, block (%u,%u,%u), thread (%u,%u,%u)", launch_->header().c_str(), blockIdx.x, blockIdx.y,
                  blockIdx.z, current_->index.x, current_->index.y, current_->index.z);
}
#endif

void BlockRunner::fail_block(cudaError_t code, const std::string& what, const GpuThread* thread) {
    block_failed_ = true;
    std::string where = format("%s, block (%u,%u,%u)", launch_->header().c_str(), blockIdx.x, blockIdx.y, blockIdx.z);
    if (thread != nullptr) {
        where += format(", thread (%u,%u,%u) (warp %u, lane %u)", thread->index.x, thread->index.y, thread->index.z,
                        thread->linear / kWarpSize, thread->linear % kWarpSize);
    }
    launch_->fail(code, format("%s: %s (%s)", where.c_str(), what.c_str(), cudaGetErrorName(code)));
}

void BlockRunner::trap(cudaError_t code, const std::string& what) {
    fail_block(code, what, current_);
    throw BlockAborted{};
}

void BlockRunner::on_thread_exit() {
    GpuThread& t = *current_;
    t.state = ThreadState::exited;
    --live_;
    if (exited_++ == 0) {
        first_exited_ = t.linear;
    }
    const unsigned lane = t.linear % kWarpSize;
    const unsigned warp_base = t.linear - lane;
    const unsigned warp_end = std::min<unsigned>(warp_base + kWarpSize, launch_->threads_per_block);
    for (unsigned u = warp_base; u < warp_end; ++u) {
        const GpuThread& other = threads_[u];
        if (other.state == ThreadState::at_warp_op && ((other.mask >> lane) & 1u) != 0) {
            trap(cudaErrorLaunchFailure,
                 format("this thread exited while lane %u waits for it in %s with mask 0x%08x; every lane named in "
                        "the mask must execute the same call",
                        u - warp_base, op_name(other.op), other.mask));
        }
    }
    if (at_barrier_ > 0 && at_barrier_ == live_) {
        trap(cudaErrorLaunchFailure,
             format("this thread exited while %u threads of the block wait at __syncthreads(), which every thread of "
                    "the block must reach (%u threads exited)",
                    at_barrier_, exited_));
    }
}

int BlockRunner::barrier(BarrierReduce reduce, int predicate) {
    GpuThread& t = *current_;
    if (at_barrier_ == 0) {
        barrier_reduce_ = reduce;
        barrier_count_ = 0;
    } else if (reduce != barrier_reduce_) {
        trap(cudaErrorLaunchFailure, "threads of the block wait at different kinds of barrier "
                                     "(__syncthreads() and __syncthreads_count/and/or)");
    }
    barrier_count_ += predicate != 0 ? 1 : 0;
    t.state = ThreadState::at_barrier;
    ++at_barrier_;
    if (at_barrier_ < live_) {
        wait(t);
        return static_cast<int>(t.result);
    }
    if (exited_ > 0) {
        const GpuThread& first = threads_[first_exited_];
        trap(cudaErrorLaunchFailure,
             format("__syncthreads() reached by %u of %u threads: %u threads of the block exited without reaching it "
                    "(first: thread (%u,%u,%u)); a barrier must be reached by every thread of the block",
                    at_barrier_, launch_->threads_per_block, exited_, first.index.x, first.index.y, first.index.z));
    }
    int result = 0;
    switch (barrier_reduce_) {
        case BarrierReduce::none: result = 0; break;
        case BarrierReduce::count: result = barrier_count_; break;
        case BarrierReduce::all: result = barrier_count_ == static_cast<int>(at_barrier_) ? 1 : 0; break;
        case BarrierReduce::any: result = barrier_count_ > 0 ? 1 : 0; break;
    }
    for (unsigned i : order_) {
        GpuThread& other = threads_[i];
        if (other.state == ThreadState::at_barrier && &other != &t) {
            other.result = static_cast<std::uint64_t>(result);
            make_ready(other);
        }
    }
    at_barrier_ = 0;
    t.state = ThreadState::running;
    return result;
}

std::string BlockRunner::lane_states(unsigned warp_base, unsigned lanes) const {
    std::string text;
    for (unsigned l = 0; l < kWarpSize; ++l) {
        if (((lanes >> l) & 1u) == 0) {
            continue;
        }
        const GpuThread& u = threads_[warp_base + l];
        const char* where = "running";
        switch (u.state) {
            case ThreadState::at_barrier: where = "at __syncthreads()"; break;
            case ThreadState::at_warp_op: where = op_name(u.op); break;
            case ThreadState::at_activemask: where = "at __activemask()"; break;
            case ThreadState::exited: where = "exited"; break;
            default: break;
        }
        text += format("%slane %u %s", text.empty() ? "" : ", ", l, where);
    }
    return text;
}

std::uint64_t BlockRunner::warp_collective(WarpOp op, unsigned mask, std::uint64_t payload, unsigned payload_bytes,
                                           int operand, int width) {
    GpuThread& t = *current_;
    const unsigned n = launch_->threads_per_block;
    const unsigned lane = t.linear % kWarpSize;
    const unsigned warp_base = t.linear - lane;
    const unsigned lanes_in_warp = std::min(kWarpSize, n - warp_base);
    const unsigned existing = lanes_in_warp == kWarpSize ? 0xffffffffu : (1u << lanes_in_warp) - 1u;
    if (((mask >> lane) & 1u) == 0) {
        trap(cudaErrorLaunchFailure,
             format("%s called with mask 0x%08x, which does not include the calling lane %u", op_name(op), mask, lane));
    }
    if ((mask & ~existing) != 0) {
        trap(cudaErrorLaunchFailure,
             format("%s with mask 0x%08x, but warp %u has only %u lanes (block of %u threads): lanes 0x%08x do not "
                    "exist, so a partial warp must not use a full mask",
                    op_name(op), mask, t.linear / kWarpSize, lanes_in_warp, n, mask & ~existing));
    }
    if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0)) {
        trap(cudaErrorLaunchFailure, format("%s with width %d, which is not a power of two in [1, 32]", op_name(op), width));
    }
    t.op = op;
    t.mask = mask;
    t.operand = operand;
    t.width = width;
    t.payload = payload;
    t.payload_bytes = payload_bytes;
    t.state = ThreadState::at_warp_op;

    bool complete = true;
    for (unsigned l = 0; l < kWarpSize; ++l) {
        if (((mask >> l) & 1u) == 0 || l == lane) {
            continue;
        }
        const GpuThread& u = threads_[warp_base + l];
        if (u.state == ThreadState::exited) {
            trap(cudaErrorLaunchFailure,
                 format("%s with mask 0x%08x, but lane %u named in the mask has exited", op_name(op), mask, l));
        }
        if (u.state == ThreadState::at_warp_op) {
            if (u.op != op || u.mask != mask || u.payload_bytes != payload_bytes || (is_shuffle(op) && u.width != width)) {
                trap(cudaErrorLaunchFailure,
                     format("%s with mask 0x%08x while lane %u waits in %s with mask 0x%08x: all lanes named in the "
                            "mask must execute the same call with the same mask",
                            op_name(op), mask, l, op_name(u.op), u.mask));
            }
        } else {
            complete = false;
        }
    }
    if (!complete) {
        wait(t);
        return t.result;
    }

    std::uint64_t common = 0;
    if (op == WarpOp::ballot || op == WarpOp::any || op == WarpOp::all) {
        unsigned votes = 0;
        for (unsigned l = 0; l < kWarpSize; ++l) {
            if (((mask >> l) & 1u) != 0 && threads_[warp_base + l].payload != 0) {
                votes |= 1u << l;
            }
        }
        common = op == WarpOp::ballot ? votes : (op == WarpOp::any ? (votes != 0) : (votes == mask));
    }
    for (unsigned l = 0; l < kWarpSize; ++l) {
        if (((mask >> l) & 1u) == 0) {
            continue;
        }
        GpuThread& u = threads_[warp_base + l];
        if (is_shuffle(op)) {
            const unsigned source = shuffle_source(op, l, u.operand, width);
            if (((mask >> source) & 1u) == 0) {
                trap(cudaErrorLaunchFailure,
                     format("in %s with mask 0x%08x and width %d, lane %u reads lane %u, which is outside the mask "
                            "(inactive or nonexistent): the value it gets is undefined",
                            op_name(op), mask, width, l, source));
            }
            u.result = threads_[warp_base + source].payload;
        } else {
            u.result = common;
        }
    }
    for (unsigned i : order_) {
        if (i < warp_base || i >= warp_base + kWarpSize || i == t.linear) {
            continue;
        }
        if (((mask >> (i - warp_base)) & 1u) != 0) {
            make_ready(threads_[i]);
        }
    }
    t.state = ThreadState::running;
    return t.result;
}

unsigned BlockRunner::active_mask() {
    GpuThread& t = *current_;
    const unsigned lane = t.linear % kWarpSize;
    const unsigned warp_base = t.linear - lane;
    const unsigned warp_end = std::min<unsigned>(warp_base + kWarpSize, launch_->threads_per_block);
    t.state = ThreadState::at_activemask;
    // The lanes "active together" are those that reach __activemask() before any of them goes on:
    // resolved once every other lane of the warp has exited or is waiting somewhere.
    for (unsigned u = warp_base; u < warp_end; ++u) {
        const ThreadState s = threads_[u].state;
        if (s == ThreadState::not_started || s == ThreadState::ready || s == ThreadState::running) {
            wait(t);
            return static_cast<unsigned>(t.result);
        }
    }
    resolve_active_masks();
    t.state = ThreadState::running;
    return static_cast<unsigned>(t.result);
}

bool BlockRunner::resolve_active_masks() {
    bool any = false;
    const unsigned n = launch_->threads_per_block;
    for (unsigned warp_base = 0; warp_base < n; warp_base += kWarpSize) {
        const unsigned warp_end = std::min(warp_base + kWarpSize, n);
        unsigned mask = 0;
        for (unsigned u = warp_base; u < warp_end; ++u) {
            if (threads_[u].state == ThreadState::at_activemask) {
                mask |= 1u << (u - warp_base);
            }
        }
        if (mask == 0) {
            continue;
        }
        any = true;
        for (unsigned i : order_) {
            if (i >= warp_base && i < warp_end && threads_[i].state == ThreadState::at_activemask) {
                threads_[i].result = mask;
                if (&threads_[i] != current_) {
                    make_ready(threads_[i]);
                }
            }
        }
    }
    return any;
}

void BlockRunner::report_deadlock() {
    const unsigned n = launch_->threads_per_block;
    for (unsigned warp_base = 0; warp_base < n; warp_base += kWarpSize) {
        const unsigned warp_end = std::min(warp_base + kWarpSize, n);
        for (unsigned u = warp_base; u < warp_end; ++u) {
            const GpuThread& t = threads_[u];
            if (t.state != ThreadState::at_warp_op) {
                continue;
            }
            unsigned missing = 0;
            for (unsigned l = 0; l < kWarpSize; ++l) {
                if (((t.mask >> l) & 1u) != 0 && threads_[warp_base + l].state != ThreadState::at_warp_op) {
                    missing |= 1u << l;
                }
            }
            fail_block(cudaErrorLaunchFailure,
                       format("deadlock: this lane waits in %s with mask 0x%08x, but lanes 0x%08x of its warp never "
                              "make that call (%s); %u threads wait at __syncthreads()",
                              op_name(t.op), t.mask, missing, lane_states(warp_base, missing).c_str(), at_barrier_),
                       &t);
            return;
        }
    }
    fail_block(cudaErrorLaunchFailure,
               format("deadlock: %u threads wait at __syncthreads() and %u have not reached it but cannot proceed",
                      at_barrier_, live_ - at_barrier_),
               nullptr);
}

#if CUDAEMU_ASAN
// AddressSanitizer reports the faulting address and stack; this adds which GPU thread it was.
void print_kernel_location_on_asan_report() {
    if (tls_runner != nullptr) {
        const std::string location = tls_runner->current_location();
        if (!location.empty()) {
            std::fprintf(stderr, "cudaemu: the AddressSanitizer report above happened in %s\n", location.c_str());
        }
    }
}
#endif

// ---- worker pool --------------------------------------------------------------------------------

class WorkerPool {
public:
    // Runs the launch on `workers` threads: the caller, on `caller`, and workers - 1 pool threads.
    void run(LaunchState& launch, int workers, BlockRunner& caller) {
        std::unique_lock lock(mutex_);
        while (static_cast<int>(threads_.size()) < workers - 1) {
            const int index = static_cast<int>(threads_.size());
            threads_.emplace_back([this, index] { work(index); });
            threads_.back().detach();
        }
        job_ = &launch;
        participants_ = workers - 1;
        pending_ = participants_;
        ++generation_;
        lock.unlock();
        wake_.notify_all();
        caller.run_blocks(launch);
        lock.lock();
        done_.wait(lock, [this] { return pending_ == 0; });
        job_ = nullptr;
    }

private:
    void work(int index) {
        std::uint64_t seen = 0;
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return generation_ != seen; });
            seen = generation_;
            if (index >= participants_) {
                continue;
            }
            LaunchState* job = job_;
            lock.unlock();
            thread_runner()->run_blocks(*job);  // pool threads never end, so never null
            lock.lock();
            if (--pending_ == 0) {
                done_.notify_all();
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::thread> threads_;
    LaunchState* job_ = nullptr;
    int participants_ = 0;
    int pending_ = 0;
    std::uint64_t generation_ = 0;
};

WorkerPool& worker_pool() {
    static WorkerPool* instance = new WorkerPool;  // worker threads live until the process exits
    return *instance;
}

std::mutex& launch_mutex() {
    static std::mutex* instance = new std::mutex;
    return *instance;
}

// ---- launch -------------------------------------------------------------------------------------

cudaError_t validate(const KernelLaunch& l, const std::string& name) {
    const char* api = "cudaemu::launch";
    const dim3 b = l.block;
    const dim3 g = l.grid;
    if (l.address == nullptr || l.run_thread == nullptr) {
        return fail(cudaErrorInvalidDeviceFunction, api, "null kernel");
    }
    const std::uint64_t threads = static_cast<std::uint64_t>(b.x) * b.y * b.z;
    if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024) {
        return fail(cudaErrorInvalidConfiguration, api,
                    format("kernel '%s': block (%u,%u,%u) is invalid (each dim >= 1, x,y <= 1024, z <= 64, at most "
                           "1024 threads)",
                           name.c_str(), b.x, b.y, b.z));
    }
    if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
        return fail(cudaErrorInvalidConfiguration, api,
                    format("kernel '%s': grid (%u,%u,%u) is invalid (each dim >= 1, x <= 2^31-1, y,z <= 65535)",
                           name.c_str(), g.x, g.y, g.z));
    }
    const std::size_t limit = dynamic_shared_limit(l.address);
    if (l.dynamic_shared_bytes > limit) {
        return fail(cudaErrorInvalidValue, api,
                    format("kernel '%s': %zu bytes of dynamic shared memory exceed the kernel's limit of %zu bytes%s",
                           name.c_str(), l.dynamic_shared_bytes, limit,
                           limit == kSharedMemPerBlock
                               ? " (raise it with cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))"
                               : ""));
    }
    if (!is_valid_stream(l.stream)) {
        return fail(cudaErrorInvalidResourceHandle, api,
                    format("kernel '%s': stream %p was not created or was destroyed", name.c_str(),
                           static_cast<void*>(l.stream)));
    }
    for (std::size_t i = 0; i < l.pointer_arg_count; ++i) {
        const void* p = l.pointer_args[i];
        if (p != nullptr && !find_allocation(p, 0, nullptr)) {
            return fail(cudaErrorIllegalAddress, api,
                        format("kernel '%s': argument %d is %p, which is not in any live cudaMalloc/cudaMallocHost "
                               "allocation (host memory, a freed buffer or garbage); a GPU would fault on it",
                               name.c_str(), l.pointer_arg_positions[i] + 1, p));
        }
    }
    return cudaSuccess;
}

cudaError_t execute(LaunchState& state, int workers) {
    const int used = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(workers), state.total_blocks));
    BlockRunner* own = thread_runner();
    std::optional<BlockRunner> temporary;
    BlockRunner& caller = own != nullptr ? *own : temporary.emplace();
    if (used <= 1) {
        caller.run_blocks(state);
    } else {
        worker_pool().run(state, used, caller);
    }
    return state.error;
}

void describe_difference(std::string& text, const AllocationInfo& info, std::size_t offset, const unsigned char* first,
                         const unsigned char* second) {
    text += format("\n  %s differs first at byte offset %zu", describe(info).c_str(), offset);
    const std::size_t word = offset & ~std::size_t{3};
    if (word + 4 <= info.size) {
        float a;
        float b;
        std::uint32_t ua;
        std::uint32_t ub;
        std::memcpy(&a, first + word, 4);
        std::memcpy(&b, second + word, 4);
        std::memcpy(&ua, first + word, 4);
        std::memcpy(&ub, second + word, 4);
        text += format(" (32-bit word at %zu: 0x%08x = %g in increasing order, 0x%08x = %g in decreasing order)", word,
                       ua, static_cast<double>(a), ub, static_cast<double>(b));
    }
}

// Compares the result of the first schedule with the memory left by the second one.
std::string compare_runs(const std::vector<AllocationSnapshot>& first_run) {
    FloatAtomicTables& tables = float_atomic_tables();
    std::string text;
    std::size_t reported = 0;
    for (const AllocationSnapshot& saved : first_run) {
        const auto* now = reinterpret_cast<const unsigned char*>(saved.base);
        const unsigned char* before = saved.bytes.data();
        const std::size_t size = saved.bytes.size();
        std::size_t offset = 0;
        std::size_t differing_words = 0;
        std::size_t first_offset = 0;
        while (offset < size) {
            const std::size_t chunk = std::min<std::size_t>(4096, size - offset);
            if (std::memcmp(before + offset, now + offset, chunk) == 0) {
                offset += chunk;
                continue;
            }
            const std::size_t end = offset + chunk;
            for (; offset < end; ++offset) {
                if (before[offset] == now[offset]) {
                    continue;
                }
                bool tolerated = false;
                for (const std::size_t width : {std::size_t{4}, std::size_t{8}}) {
                    const std::size_t word = offset & ~(width - 1);
                    const std::uintptr_t address = saved.base + word;
                    const auto a = tables.runs[0].find(address);
                    const auto b = tables.runs[1].find(address);
                    if (a == tables.runs[0].end() || b == tables.runs[1].end() || word + width > size ||
                        a->second.is_double != (width == 8)) {
                        continue;
                    }
                    double x;
                    double y;
                    if (width == 8) {
                        std::memcpy(&x, before + word, 8);
                        std::memcpy(&y, now + word, 8);
                    } else {
                        float fx;
                        float fy;
                        std::memcpy(&fx, before + word, 4);
                        std::memcpy(&fy, now + word, 4);
                        x = fx;
                        y = fy;
                    }
                    const double bound = summation_error_bound(a->second) + summation_error_bound(b->second);
                    if (std::fabs(x - y) <= bound || (x != x && y != y)) {
                        tolerated = true;
                        offset = word + width - 1;
                        break;
                    }
                }
                if (!tolerated) {
                    if (differing_words++ == 0) {
                        first_offset = offset;
                    }
                    offset = (offset | 3);
                }
            }
        }
        if (differing_words > 0) {
            if (reported++ < 4) {
                describe_difference(text, saved.info, first_offset, before, now);
                text += format("; %zu differing 32-bit words", differing_words);
            }
        }
    }
    return text;
}

cudaError_t run_checked(LaunchState& forward, LaunchState& backward) {
    FloatAtomicTables& tables = float_atomic_tables();
    const std::vector<AllocationSnapshot> initial = snapshot_allocations();
    tables.runs[0].clear();
    tables.runs[1].clear();
    tables.current = 0;
    g_track_float_atomics.store(true);
    cudaError_t error = execute(forward, 1);
    if (error != cudaSuccess) {
        g_track_float_atomics.store(false);
        return error;
    }
    const std::vector<AllocationSnapshot> first_run = snapshot_allocations();
    restore_allocations(initial);
    tables.current = 1;
    error = execute(backward, 1);
    g_track_float_atomics.store(false);
    if (error != cudaSuccess) {
        return error;
    }
    const std::string differences = compare_runs(first_run);
    if (!differences.empty()) {
        report_error(format("%s: checking mode: the result depends on the execution schedule (a data race: a missing "
                            "__syncthreads()/__syncwarp(), threads or blocks writing the same location, or a read of "
                            "uninitialized shared memory). Runs with threads and blocks in increasing and in "
                            "decreasing order differ:%s (cudaErrorLaunchFailure)",
                            backward.header().c_str(), differences.c_str()));
        return cudaErrorLaunchFailure;
    }
    return cudaSuccess;
}

}  // namespace

// ---- entry points used by the kernel language ---------------------------------------------------

std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t payload, unsigned payload_bytes, int operand,
                              int width) {
    return current_runner(op_name(op)).warp_collective(op, mask, payload, payload_bytes, operand, width);
}

unsigned warp_active_mask() { return current_runner("__activemask").active_mask(); }

int block_barrier(BarrierReduce reduce, int predicate) {
    return current_runner("__syncthreads").barrier(reduce, predicate);
}

void* dynamic_shared_memory() { return current_runner("STRATA_DYNAMIC_SHARED").dynamic_shared(); }

void kernel_trap(const char* what) {
    const std::string text(what);
    const cudaError_t code = text.find("misaligned") != std::string::npos ? cudaErrorMisalignedAddress
                                                                          : cudaErrorLaunchFailure;
    current_runner("__trap").trap(code, text);
}

void note_float_atomic_add(const void* address, double addend, bool is_double) {
    FloatAtomicTables& tables = float_atomic_tables();
    auto [it, inserted] = tables.runs[tables.current].try_emplace(reinterpret_cast<std::uintptr_t>(address));
    FloatAtomicRecord& record = it->second;
    if (inserted) {
        record.is_double = is_double;
        double initial = 0.0;
        if (is_double) {
            std::memcpy(&initial, address, 8);
        } else {
            float value;
            std::memcpy(&value, address, 4);
            initial = value;
        }
        record.sum_abs = std::fabs(initial);
    }
    record.sum_abs += std::fabs(addend);
    ++record.adds;
}

namespace {

// Runs a validated launch to completion: what the GPU does when the launch reaches the front of its
// stream. `checking` and `workers` are the settings in force when it was launched.
cudaError_t run_launch(const KernelLaunch& launch, const std::string& name, bool checking, int workers) {
    std::lock_guard lock(launch_mutex());
#if CUDAEMU_ASAN
    static std::once_flag asan_callback;
    std::call_once(asan_callback, [] { __asan_set_death_callback(&print_kernel_location_on_asan_report); });
#endif
    count_launch();
    const std::uint64_t total_blocks = static_cast<std::uint64_t>(launch.grid.x) * launch.grid.y * launch.grid.z;
    const unsigned threads = launch.block.x * launch.block.y * launch.block.z;
    LaunchState forward;
    forward.launch = &launch;
    forward.name = name;
    forward.total_blocks = total_blocks;
    forward.threads_per_block = threads;
    cudaError_t error = cudaSuccess;
    if (checking) {
        LaunchState backward;
        backward.launch = &launch;
        backward.name = name;
        backward.total_blocks = total_blocks;
        backward.threads_per_block = threads;
        backward.reverse = true;
        error = run_checked(forward, backward);
    } else {
        error = execute(forward, workers);
    }
    const int corrupted = check_all_guards(format("after %s", forward.header().c_str()).c_str());
    if (error == cudaSuccess && corrupted != 0) {
        error = cudaErrorIllegalAddress;
    }
    return set_last_error(error);
}

}  // namespace

cudaError_t launch_kernel(const KernelLaunch& launch) {
    std::string name = kernel_display_name(launch);
    if (cudaError_t e = validate(launch, name); e != cudaSuccess) {
        return e;
    }
    // The stream may run the launch after the caller's frame is gone: it keeps its own packet. The
    // pointer arguments were only needed for validation, which is done.
    std::shared_ptr<void> packet(launch.clone_packet(launch.packet), launch.destroy_packet);
    KernelLaunch queued = launch;
    queued.packet = packet.get();
    queued.pointer_args = nullptr;
    queued.pointer_arg_positions = nullptr;
    queued.pointer_arg_count = 0;
    const bool checking = cudaemu::checking_mode();
    const int workers = cudaemu::worker_count();
    return submit(launch.stream, [queued, packet, name = std::move(name), checking, workers] {
        return run_launch(queued, name, checking, workers);
    });
}

}  // namespace cudaemu::detail

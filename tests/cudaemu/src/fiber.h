// cudaemu: user-space execution contexts (fibers) that run GPU threads. On x86-64 a context
// switch saves the callee-saved registers, MXCSR and the x87 control word of the System V ABI on
// the current stack, swaps stack pointers and restores the other side (about a dozen
// instructions); other architectures use POSIX ucontext. Stacks come from mmap with an
// inaccessible guard page below them plus a canary word checked after every GPU thread, so a
// stack overflow faults or is reported instead of corrupting memory. Under AddressSanitizer every
// switch is announced with __sanitizer_start_switch_fiber/__sanitizer_finish_switch_fiber.
//
// Fibers only ever switch to and from the one scheduler context of their OS thread, and their
// entry function never returns: a fiber runs one GPU thread after another in a loop.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) || defined(CUDAEMU_FORCE_UCONTEXT)
#define CUDAEMU_USE_UCONTEXT 1
#include <ucontext.h>
#else
#define CUDAEMU_USE_UCONTEXT 0
#endif

namespace cudaemu::detail {

struct ExecutionContext {
#if CUDAEMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* stack_pointer = nullptr;
#endif
    void* asan_fake_stack = nullptr;
    const void* stack_bottom = nullptr;  // lowest usable address, for ASan
    std::size_t stack_size = 0;
};

class Fiber {
public:
    using Entry = void (*)(Fiber* self);

    Fiber(std::size_t stack_bytes, Entry entry, void* owner);
    ~Fiber();
    Fiber(const Fiber&) = delete;
    Fiber& operator=(const Fiber&) = delete;

    // Switches from the scheduler context `from` into this fiber.
    void resume(ExecutionContext& from);
    // Called on the fiber: switches back to the scheduler context it was resumed from.
    void suspend();
    // Called first thing in `entry`, and by suspend() after it returns.
    void finish_switch_in();

    bool stack_intact() const;
    // Rewrites the canary after an overflow was reported, so the fiber can be reused.
    void repair_canary();
    std::size_t stack_bytes() const { return stack_bytes_; }
    void* owner() const { return owner_; }

    // First code run on a fresh fiber stack.
    [[noreturn]] static void start(Fiber* self);

private:
    // Prepares the stack so that the first resume() enters start().
    void prepare_stack();

    unsigned char* mapping_ = nullptr;
    std::size_t mapping_bytes_ = 0;
    std::size_t stack_bytes_ = 0;
    Entry entry_;
    void* owner_;
    ExecutionContext context_;
    ExecutionContext* scheduler_ = nullptr;
};

}  // namespace cudaemu::detail

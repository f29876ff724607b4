// cudaemu: fiber stacks and context switching (see fiber.h).
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "internal.h"

#if CUDAEMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !CUDAEMU_USE_UCONTEXT
extern "C" void cudaemu_switch_stack(void** save_stack_pointer, void* load_stack_pointer);
extern "C" void cudaemu_fiber_trampoline();

// Saves the callee-saved state of the System V x86-64 ABI (rbp, rbx, r12-r15, MXCSR, x87 control
// word) on the current stack, stores the stack pointer, loads the other one and restores its state.
// A fresh fiber's stack is prepared so that the final `ret` enters cudaemu_fiber_trampoline with
// r12 = argument and r13 = function.
asm(R"(
    .text
    .p2align 4
    .globl cudaemu_switch_stack
    .hidden cudaemu_switch_stack
    .type cudaemu_switch_stack, @function
cudaemu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw (%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudaemu_switch_stack, .-cudaemu_switch_stack

    .p2align 4
    .globl cudaemu_fiber_trampoline
    .hidden cudaemu_fiber_trampoline
    .type cudaemu_fiber_trampoline, @function
cudaemu_fiber_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size cudaemu_fiber_trampoline, .-cudaemu_fiber_trampoline
)");
#endif

namespace cudaemu::detail {
namespace {

constexpr std::uint64_t kStackCanary = 0xC0DAE3A1F1BE5A5Eull;

std::size_t page_size() {
    static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

void raw_switch(ExecutionContext& from, ExecutionContext& to) {
#if CUDAEMU_USE_UCONTEXT
    if (swapcontext(&from.context, &to.context) != 0) {
        std::fprintf(stderr, "cudaemu: internal error: swapcontext failed\n");
        std::abort();
    }
#else
    cudaemu_switch_stack(&from.stack_pointer, to.stack_pointer);
#endif
}

#if CUDAEMU_USE_UCONTEXT
void ucontext_entry(unsigned int high, unsigned int low) {
    const std::uintptr_t address = (static_cast<std::uintptr_t>(high) << 32) | static_cast<std::uintptr_t>(low);
    Fiber::start(reinterpret_cast<Fiber*>(address));
}
#endif

}  // namespace

Fiber::Fiber(std::size_t stack_bytes, Entry entry, void* owner) : entry_(entry), owner_(owner) {
    const std::size_t page = page_size();
    stack_bytes_ = (stack_bytes + page - 1) / page * page;
    mapping_bytes_ = stack_bytes_ + page;
    void* mapping = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) {
        std::fprintf(stderr, "cudaemu: cannot map a %zu-byte fiber stack for a GPU thread\n", mapping_bytes_);
        std::abort();
    }
    mapping_ = static_cast<unsigned char*>(mapping);
    if (mprotect(mapping_, page, PROT_NONE) != 0) {
        std::fprintf(stderr, "cudaemu: cannot protect a fiber stack guard page\n");
        std::abort();
    }
    prepare_stack();
}

Fiber::~Fiber() { munmap(mapping_, mapping_bytes_); }

void Fiber::prepare_stack() {
    unsigned char* bottom = mapping_ + page_size();
    std::memcpy(bottom, &kStackCanary, sizeof kStackCanary);
    context_.asan_fake_stack = nullptr;
    context_.stack_bottom = bottom;
    context_.stack_size = stack_bytes_;
#if CUDAEMU_USE_UCONTEXT
    if (getcontext(&context_.context) != 0) {
        std::fprintf(stderr, "cudaemu: internal error: getcontext failed\n");
        std::abort();
    }
    context_.context.uc_stack.ss_sp = bottom;
    context_.context.uc_stack.ss_size = stack_bytes_;
    context_.context.uc_link = nullptr;
    const auto address = reinterpret_cast<std::uintptr_t>(this);
    makecontext(&context_.context, reinterpret_cast<void (*)()>(&ucontext_entry), 2,
                static_cast<unsigned int>(address >> 32), static_cast<unsigned int>(address & 0xffffffffu));
#else
    const auto top = reinterpret_cast<std::uintptr_t>(bottom + stack_bytes_) & ~std::uintptr_t{15};
    auto* frame = reinterpret_cast<std::uint64_t*>(top - 11 * sizeof(std::uint64_t));
    std::memset(frame, 0, 11 * sizeof(std::uint64_t));
    frame[0] = 0x037F;  // x87 control word: default precision and masks
    frame[1] = 0x1F80;  // MXCSR: all exceptions masked, round to nearest
    frame[4] = reinterpret_cast<std::uint64_t>(&Fiber::start);  // r13
    frame[5] = reinterpret_cast<std::uint64_t>(this);           // r12
    frame[8] = reinterpret_cast<std::uint64_t>(&cudaemu_fiber_trampoline);
    context_.stack_pointer = frame;
#endif
}

void Fiber::resume(ExecutionContext& from) {
    scheduler_ = &from;
#if CUDAEMU_ASAN
    __sanitizer_start_switch_fiber(&from.asan_fake_stack, context_.stack_bottom, context_.stack_size);
#endif
    raw_switch(from, context_);
#if CUDAEMU_ASAN
    __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}

void Fiber::suspend() {
#if CUDAEMU_ASAN
    __sanitizer_start_switch_fiber(&context_.asan_fake_stack, scheduler_->stack_bottom, scheduler_->stack_size);
#endif
    raw_switch(context_, *scheduler_);
    finish_switch_in();
}

void Fiber::finish_switch_in() {
#if CUDAEMU_ASAN
    __sanitizer_finish_switch_fiber(context_.asan_fake_stack, &scheduler_->stack_bottom, &scheduler_->stack_size);
#endif
}

bool Fiber::stack_intact() const {
    std::uint64_t word;
    std::memcpy(&word, mapping_ + page_size(), sizeof word);
    return word == kStackCanary;
}

void Fiber::repair_canary() { std::memcpy(mapping_ + page_size(), &kStackCanary, sizeof kStackCanary); }

void Fiber::start(Fiber* self) {
    self->finish_switch_in();
    self->entry_(self);
    std::fprintf(stderr, "cudaemu: internal error: a fiber entry returned\n");
    std::abort();
}

}  // namespace cudaemu::detail

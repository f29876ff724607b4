// cudaemu: the kernel launch entry point of the emulation build, the counterpart of
// `kernel<<<grid, block, dynamic_shared_bytes, stream>>>(args...)` followed by cudaGetLastError().
//
// Contract (what strata's single launch helper relies on):
//   cudaError_t cudaemu::launch(kernel, grid, block, dynamic_shared_bytes, stream, args...);
//   cudaError_t cudaemu::launch_named("name", kernel, grid, block, dynamic_shared_bytes, stream, args...);
// - The arguments are converted to the kernel's parameter types as in a function call and copied
//   once, like CUDA's parameter buffer; every GPU thread receives its own copy.
// - The configuration is validated as CUDA does: block dims (1024, 1024, 64) with at most 1024
//   threads, grid dims (2^31-1, 65535, 65535), no zero dims -> cudaErrorInvalidConfiguration;
//   dynamic shared memory above the kernel's limit (48 KiB, or what cudaFuncSetAttribute(
//   cudaFuncAttributeMaxDynamicSharedMemorySize) allowed) -> cudaErrorInvalidValue; a destroyed
//   stream -> cudaErrorInvalidResourceHandle. A rejected launch runs nothing.
// - A pointer argument must be null or point into (or one past) a live cudaMalloc/cudaMallocHost
//   allocation; anything else is what would fault on a GPU -> cudaErrorIllegalAddress, nothing run.
// - In the eager stream mode (the default) the kernel then runs to completion before the call
//   returns. Misuse detected while it runs (barrier reached by part of a block, bad warp
//   collective, trap, overwritten guard zone, schedule dependent result in checking mode) makes the
//   call return the error (cudaErrorLaunchFailure, cudaErrorIllegalAddress,
//   cudaErrorMisalignedAddress), prints a message naming the kernel, the block and the thread, and
//   sets the host thread's last error, as a failed launch does in CUDA.
// - In the deferred stream mode (control.h) a valid launch is queued on its stream and the call
//   returns cudaSuccess; the kernel runs when the stream's work is needed (see README.md), and
//   misuse found then is reported the same way on the host thread that ran it and returned by the
//   next cudaStreamSynchronize/cudaEventSynchronize/cudaDeviceSynchronize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../driver_types.h"
#include "../vector_types.h"

namespace cudaemu {
namespace detail {

struct KernelLaunch {
    const char* name;  // null: resolved from the symbol table, else printed as an address
    const void* address;
    dim3 grid;
    dim3 block;
    std::size_t dynamic_shared_bytes;
    cudaStream_t stream;
    void (*run_thread)(const void* packet);  // runs one GPU thread of the kernel
    const void* packet;  // the kernel and its converted arguments, on the caller's stack
    // A deferred launch outlives the caller's stack frame: it runs on a heap copy of the packet,
    // made by clone_packet and released by destroy_packet once the kernel has run.
    void* (*clone_packet)(const void* packet);
    void (*destroy_packet)(void* packet);
    const void* const* pointer_args;
    const int* pointer_arg_positions;
    std::size_t pointer_arg_count;
};

cudaError_t launch_kernel(const KernelLaunch& launch);

template <class To>
inline To implicit_convert(To value) {
    return value;
}

template <class F>
inline const void* function_address(F* function) {
    return reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(function));
}

template <class P>
inline void collect_pointer_arg(const P& value, int position, const void** pointers, int* positions,
                                std::size_t& count) {
    if constexpr (std::is_pointer_v<P> && !std::is_function_v<std::remove_pointer_t<P>>) {
        pointers[count] = const_cast<const void*>(static_cast<const volatile void*>(value));
        positions[count] = position;
        ++count;
    }
}

}  // namespace detail

template <class... KArgs, class... Args>
cudaError_t launch_named(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                         std::size_t dynamic_shared_bytes, cudaStream_t stream, Args&&... args) {
    static_assert(sizeof...(KArgs) == sizeof...(Args),
                  "cudaemu::launch: the number of arguments does not match the kernel's parameters");
    using Params = std::tuple<std::remove_cvref_t<KArgs>...>;
    struct Packet {
        void (*kernel)(KArgs...);
        Params params;
    };
    const Packet packet{kernel, Params(detail::implicit_convert<std::remove_cvref_t<KArgs>>(std::forward<Args>(args))...)};

    const void* pointers[sizeof...(KArgs) + 1] = {};
    int positions[sizeof...(KArgs) + 1] = {};
    std::size_t pointer_count = 0;
    std::apply(
        [&](const auto&... param) {
            int position = 0;
            (detail::collect_pointer_arg(param, position++, pointers, positions, pointer_count), ...);
            static_cast<void>(position);
        },
        packet.params);

    const detail::KernelLaunch launch{
        name,
        detail::function_address(kernel),
        grid,
        block,
        dynamic_shared_bytes,
        stream,
        [](const void* raw) {
            const Packet& p = *static_cast<const Packet*>(raw);
            std::apply([&p](const auto&... param) { p.kernel(param...); }, p.params);
        },
        &packet,
        [](const void* raw) -> void* { return new Packet(*static_cast<const Packet*>(raw)); },
        [](void* raw) { delete static_cast<Packet*>(raw); },
        pointers,
        positions,
        pointer_count};
    return detail::launch_kernel(launch);
}

template <class... KArgs, class... Args>
cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, std::size_t dynamic_shared_bytes,
                   cudaStream_t stream, Args&&... args) {
    return launch_named(nullptr, kernel, grid, block, dynamic_shared_bytes, stream, std::forward<Args>(args)...);
}

}  // namespace cudaemu

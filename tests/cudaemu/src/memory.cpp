// cudaemu: device and pinned host memory. Emulates cudaMalloc/cudaFree and cudaHostAlloc/
// cudaFreeHost as documented (256-byte alignment, size 0 gives a null pointer, freeing null is a
// no-op, freeing anything else that is not a live allocation of the right kind is
// cudaErrorInvalidValue, exceeding the device capacity is cudaErrorMemoryAllocation), and adds
// what a GPU does not have: fresh memory is filled with 0xFF bytes (NaN as float and double, -1
// as integers) so a result nobody wrote is visible, and every allocation sits between two guard
// zones whose pattern is verified on free, on synchronization and after every kernel, so that an
// out-of-bounds write is reported with the allocation it hit. Under AddressSanitizer the guard
// zones are also poisoned, so ASan stops at the faulting write itself.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cudaemu/control.h"
#include "internal.h"

#if CUDAEMU_ASAN
#include <sanitizer/asan_interface.h>
#define CUDAEMU_POISON(address, size) ASAN_POISON_MEMORY_REGION(address, size)
#define CUDAEMU_UNPOISON(address, size) ASAN_UNPOISON_MEMORY_REGION(address, size)
#else
#define CUDAEMU_POISON(address, size) static_cast<void>(0)
#define CUDAEMU_UNPOISON(address, size) static_cast<void>(0)
#endif

namespace cudaemu::detail {
namespace {

constexpr unsigned char kFreshByte = 0xFF;
constexpr std::size_t kMaxBackGuard = kGuardBytes + kDeviceAlignment - 1;

unsigned char guard_byte(std::size_t offset) { return static_cast<unsigned char>(0xA5u ^ (offset * 0x3Bu)); }

struct GuardPattern {
    unsigned char bytes[kMaxBackGuard];
    GuardPattern() {
        for (std::size_t i = 0; i < kMaxBackGuard; ++i) {
            bytes[i] = guard_byte(i);
        }
    }
};
const GuardPattern kPattern;

struct Entry {
    unsigned char* raw;  // start of the front guard
    std::size_t size;
    std::size_t back_guard;  // bytes from base + size to the end of the block
    MemoryKind kind;
    std::uint64_t id;
    std::string label;

    unsigned char* base() const { return raw + kGuardBytes; }
};

struct Registry {
    std::mutex mutex;
    std::map<std::uintptr_t, Entry> entries;  // keyed by the user-visible base address
    std::uint64_t next_id = 1;
    MemoryStats stats{};
};

Registry& registry() {
    static Registry* instance = new Registry;  // never destroyed: used until process exit
    return *instance;
}

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

AllocationInfo info_of(const Entry& entry) {
    AllocationInfo info;
    info.base = reinterpret_cast<std::uintptr_t>(entry.base());
    info.size = entry.size;
    info.kind = entry.kind;
    info.id = entry.id;
    info.label = entry.label;
    return info;
}

const char* kind_name(MemoryKind kind) { return kind == MemoryKind::device ? "device" : "pinned host"; }

void write_guards(Entry& entry) {
    std::memcpy(entry.raw, kPattern.bytes, kGuardBytes);
    std::memcpy(entry.base() + entry.size, kPattern.bytes, entry.back_guard);
    CUDAEMU_POISON(entry.raw, kGuardBytes);
    CUDAEMU_POISON(entry.base() + entry.size, entry.back_guard);
}

// Returns the number of overwritten zones of `entry` (0..2), reporting and repairing them.
int check_guards(Entry& entry, const char* context) {
    int corrupted = 0;
    CUDAEMU_UNPOISON(entry.raw, kGuardBytes);
    CUDAEMU_UNPOISON(entry.base() + entry.size, entry.back_guard);
    if (std::memcmp(entry.raw, kPattern.bytes, kGuardBytes) != 0) {
        std::size_t first = 0;
        while (entry.raw[first] == kPattern.bytes[first]) {
            ++first;
        }
        report_error(format("guard zone before %s was overwritten (%zu bytes before its start), detected %s: "
                            "an out-of-bounds write with a negative index",
                            describe(info_of(entry)).c_str(), kGuardBytes - first, context));
        ++corrupted;
    }
    const unsigned char* back = entry.base() + entry.size;
    if (std::memcmp(back, kPattern.bytes, entry.back_guard) != 0) {
        std::size_t first = 0;
        while (back[first] == kPattern.bytes[first]) {
            ++first;
        }
        report_error(format("guard zone after %s was overwritten (first corrupted byte at offset %zu, %zu bytes "
                            "past its end), detected %s: an out-of-bounds write",
                            describe(info_of(entry)).c_str(), entry.size + first, first, context));
        ++corrupted;
    }
    if (corrupted != 0) {
        std::memcpy(entry.raw, kPattern.bytes, kGuardBytes);
        std::memcpy(entry.base() + entry.size, kPattern.bytes, entry.back_guard);
    }
    CUDAEMU_POISON(entry.raw, kGuardBytes);
    CUDAEMU_POISON(entry.base() + entry.size, entry.back_guard);
    return corrupted;
}

// The entry whose [base, base + size] contains [p, p + bytes) (end pointer allowed for bytes == 0).
Entry* lookup(Registry& reg, std::uintptr_t p, std::size_t bytes) {
    auto it = reg.entries.upper_bound(p);
    if (it == reg.entries.begin()) {
        return nullptr;
    }
    --it;
    Entry& entry = it->second;
    const std::uintptr_t base = it->first;
    if (p < base || p - base > entry.size || bytes > entry.size - (p - base)) {
        return nullptr;
    }
    return &entry;
}

}  // namespace

std::string describe(const AllocationInfo& info) {
    std::string text = format("%s allocation #%llu", kind_name(info.kind), static_cast<unsigned long long>(info.id));
    if (!info.label.empty()) {
        text += " '" + info.label + "'";
    }
    text += format(" (%zu bytes at %p)", info.size, reinterpret_cast<void*>(info.base));
    return text;
}

std::string describe_pointer(const void* ptr) {
    AllocationInfo info;
    if (find_allocation(ptr, 0, &info)) {
        return format("%p (offset %zu in %s)", ptr, reinterpret_cast<std::uintptr_t>(ptr) - info.base,
                      describe(info).c_str());
    }
    return format("%p (not in any live cudaMalloc/cudaMallocHost allocation)", ptr);
}

cudaError_t allocate(MemoryKind kind, std::size_t size, void** out, const char* api) {
    if (out == nullptr) {
        return fail(cudaErrorInvalidValue, api, "the output pointer is null");
    }
    *out = nullptr;
    if (size == 0) {
        return cudaSuccess;
    }
    if (cudaError_t e = check_unsafe_call(api); e != cudaSuccess) {
      return e;
    }
    Registry& reg = registry();
    std::unique_lock lock(reg.mutex);
    if (kind == MemoryKind::device) {
        const std::size_t capacity = device_memory_capacity();
        if (size > capacity || reg.stats.bytes_in_use > capacity - size) {
            ++reg.stats.failed_malloc_calls;
            const std::size_t in_use = reg.stats.bytes_in_use;
            lock.unlock();
            return fail(cudaErrorMemoryAllocation, api,
                        format("out of memory: %zu bytes requested, %zu of %zu bytes in use", size, in_use, capacity));
        }
    }
    const std::size_t rounded = round_up(size, kDeviceAlignment);
    const std::size_t total = kGuardBytes + rounded + kGuardBytes;
    auto* raw = static_cast<unsigned char*>(std::aligned_alloc(kDeviceAlignment, total));
    if (raw == nullptr) {
        lock.unlock();
        return fail(cudaErrorMemoryAllocation, api, format("the host could not provide %zu bytes", total));
    }
    Entry entry{raw, size, rounded - size + kGuardBytes, kind, reg.next_id++, {}};
    std::memset(entry.base(), kFreshByte, size);
    write_guards(entry);
    *out = entry.base();
    reg.entries.emplace(reinterpret_cast<std::uintptr_t>(entry.base()), std::move(entry));
    if (kind == MemoryKind::device) {
        ++reg.stats.malloc_calls;
        ++reg.stats.live_allocations;
        reg.stats.bytes_in_use += size;
        reg.stats.peak_bytes_in_use = std::max(reg.stats.peak_bytes_in_use, reg.stats.bytes_in_use);
    } else {
        ++reg.stats.host_alloc_calls;
    }
    return cudaSuccess;
}

cudaError_t release(MemoryKind kind, void* ptr, const char* api) {
    if (ptr == nullptr) {
        return cudaSuccess;
    }
    if (cudaError_t e = check_unsafe_call(api); e != cudaSuccess) {
      return e;
    }
    // cudaFree and cudaFreeHost synchronize the device implicitly, so no queued work can still
    // touch the memory once it is gone.
    complete_all_streams();
    Registry& reg = registry();
    std::unique_lock lock(reg.mutex);
    const auto p = reinterpret_cast<std::uintptr_t>(ptr);
    auto it = reg.entries.find(p);
    if (it == reg.entries.end() || it->second.kind != kind) {
        std::string why;
        if (it != reg.entries.end()) {
            why = format("it is %s, not %s memory", describe(info_of(it->second)).c_str(), kind_name(kind));
        } else if (Entry* inner = lookup(reg, p, 0)) {
            why = format("it points inside %s, not to its start", describe(info_of(*inner)).c_str());
        } else {
            why = "it was not returned by the matching allocation call, or was already freed";
        }
        lock.unlock();
        return fail(cudaErrorInvalidValue, api, format("invalid pointer %p: %s", ptr, why.c_str()));
    }
    Entry entry = std::move(it->second);
    reg.entries.erase(it);
    count_host_synchronization();
    if (kind == MemoryKind::device) {
        ++reg.stats.free_calls;
        --reg.stats.live_allocations;
        reg.stats.bytes_in_use -= entry.size;
    } else {
        ++reg.stats.host_free_calls;
    }
    const int corrupted = check_guards(entry, format("by %s", api).c_str());
    CUDAEMU_UNPOISON(entry.raw, kGuardBytes + entry.size + entry.back_guard);
    std::free(entry.raw);
    lock.unlock();
    return corrupted != 0 ? set_last_error(cudaErrorIllegalAddress) : cudaSuccess;
}

bool find_allocation(const void* ptr, std::size_t bytes, AllocationInfo* info) {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    const Entry* entry = lookup(reg, reinterpret_cast<std::uintptr_t>(ptr), bytes);
    if (entry == nullptr) {
        return false;
    }
    if (info != nullptr) {
        *info = info_of(*entry);
    }
    return true;
}

int check_all_guards(const char* context) {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    int corrupted = 0;
    for (auto& [base, entry] : reg.entries) {
        corrupted += check_guards(entry, context);
    }
    return corrupted;
}

std::vector<AllocationSnapshot> snapshot_allocations() {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    std::vector<AllocationSnapshot> snapshot;
    snapshot.reserve(reg.entries.size());
    for (const auto& [base, entry] : reg.entries) {
        snapshot.push_back({base, info_of(entry), std::vector<unsigned char>(entry.base(), entry.base() + entry.size)});
    }
    return snapshot;
}

void restore_allocations(const std::vector<AllocationSnapshot>& snapshot) {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    for (const AllocationSnapshot& saved : snapshot) {
        auto it = reg.entries.find(saved.base);
        if (it == reg.entries.end() || it->second.size != saved.bytes.size()) {
            std::fprintf(stderr, "cudaemu: internal error: an allocation changed during a kernel launch\n");
            std::abort();
        }
        std::memcpy(it->second.base(), saved.bytes.data(), saved.bytes.size());
    }
}

}  // namespace cudaemu::detail

namespace cudaemu {

MemoryStats memory_stats() {
    detail::Registry& reg = detail::registry();
    std::lock_guard lock(reg.mutex);
    return reg.stats;
}

void reset_memory_counters() {
    detail::Registry& reg = detail::registry();
    std::lock_guard lock(reg.mutex);
    reg.stats.malloc_calls = 0;
    reg.stats.failed_malloc_calls = 0;
    reg.stats.free_calls = 0;
    reg.stats.host_alloc_calls = 0;
    reg.stats.host_free_calls = 0;
    reg.stats.peak_bytes_in_use = reg.stats.bytes_in_use;
}

bool set_allocation_label(const void* ptr, const std::string& label) {
    detail::Registry& reg = detail::registry();
    std::lock_guard lock(reg.mutex);
    auto it = reg.entries.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == reg.entries.end()) {
        return false;
    }
    it->second.label = label;
    return true;
}

int check_guard_zones() { return detail::check_all_guards("by cudaemu::check_guard_zones()"); }

}  // namespace cudaemu

extern "C" cudaError_t cudaMalloc(void** devPtr, size_t size) {
    return cudaemu::detail::allocate(cudaemu::detail::MemoryKind::device, size, devPtr, "cudaMalloc");
}

extern "C" cudaError_t cudaFree(void* devPtr) {
    return cudaemu::detail::release(cudaemu::detail::MemoryKind::device, devPtr, "cudaFree");
}

extern "C" cudaError_t cudaMallocHost(void** ptr, size_t size) {
    return cudaemu::detail::allocate(cudaemu::detail::MemoryKind::pinned_host, size, ptr, "cudaMallocHost");
}

extern "C" cudaError_t cudaHostAlloc(void** pHost, size_t size, unsigned int flags) {
    constexpr unsigned int known = cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined;
    if ((flags & ~known) != 0) {
        return cudaemu::detail::fail(cudaErrorInvalidValue, "cudaHostAlloc",
                                     cudaemu::detail::format("unknown flags 0x%x", flags));
    }
    return cudaemu::detail::allocate(cudaemu::detail::MemoryKind::pinned_host, size, pHost, "cudaHostAlloc");
}

extern "C" cudaError_t cudaFreeHost(void* ptr) {
    return cudaemu::detail::release(cudaemu::detail::MemoryKind::pinned_host, ptr, "cudaFreeHost");
}

// cudaemu: the CUDA runtime API apart from memory allocation, kernel launch, streams and events:
// error codes and last-error semantics, the device and its properties, copies and memsets, kernel
// attributes, plus the emulator's control API and settings. Semantics follow the CUDA Runtime API
// reference. Copies and memsets are validated here, when they are called, and then submitted to
// their stream (streams.cpp): in the eager stream mode they run before the call returns; in the
// deferred mode they run in stream order when the host observes them or the random progress picks
// them, with the host synchronization the reference documents for each kind of copy (submit_copy).
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cudaemu/control.h"
#include "internal.h"

namespace cudaemu::detail {
namespace {

thread_local cudaError_t tls_last_error = cudaSuccess;

struct Settings {
    std::size_t device_capacity;
    bool checking;
    int workers;
    std::size_t stack_bytes;
    bool tf32_allowed;
};

struct ErrorLog {
    std::mutex mutex;
    std::uint64_t count = 0;
    std::string last;
};

ErrorLog& error_log() {
    static ErrorLog* instance = new ErrorLog;
    return *instance;
}

std::mutex& settings_mutex() {
    static std::mutex* instance = new std::mutex;
    return *instance;
}

std::size_t parse_size(const char* text, std::size_t fallback) {
    if (text == nullptr || *text == '\0') {
        return fallback;
    }
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    std::size_t scale = 1;
    if (*end == 'K' || *end == 'k') {
        scale = std::size_t{1} << 10;
    } else if (*end == 'M' || *end == 'm') {
        scale = std::size_t{1} << 20;
    } else if (*end == 'G' || *end == 'g') {
        scale = std::size_t{1} << 30;
    } else if (*end != '\0') {
        std::fprintf(stderr, "cudaemu: ignoring malformed size '%s'\n", text);
        return fallback;
    }
    return static_cast<std::size_t>(value) * scale;
}

Settings load_settings() {
    Settings s{};
    s.device_capacity = parse_size(std::getenv("CUDAEMU_DEVICE_MEMORY"), std::size_t{8} << 30);
    const char* check = std::getenv("CUDAEMU_CHECK");
    s.checking = check != nullptr && std::strcmp(check, "0") != 0 && *check != '\0';
    const unsigned int cores = std::max(1u, std::thread::hardware_concurrency());
    s.workers = static_cast<int>(std::min(4u, cores));
    if (const char* workers = std::getenv("CUDAEMU_WORKERS"); workers != nullptr && *workers != '\0') {
        s.workers = std::max(1, std::atoi(workers));
    }
    const std::size_t default_stack_kb = CUDAEMU_ASAN ? 256 : 64;
    s.stack_bytes = std::max<std::size_t>(16, parse_size(std::getenv("CUDAEMU_STACK_KB"), default_stack_kb)) * 1024;
    const char* tf32 = std::getenv("NVIDIA_TF32_OVERRIDE");
    s.tf32_allowed = !(tf32 != nullptr && std::strcmp(tf32, "0") == 0);
    return s;
}

struct Objects {
    std::mutex mutex;
    std::map<const void*, std::size_t> dynamic_shared_limits;
    std::uint64_t launches = 0;
    std::uint64_t host_synchronizations = 0;
};

Objects& objects() {
    static Objects* instance = new Objects;
    return *instance;
}

struct ErrorText {
    cudaError_t code;
    const char* name;
    const char* text;
};

// Names are the enumerator names; texts are the messages of the real cudaGetErrorString.
constexpr ErrorText kErrorTexts[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorCudartUnloading, "cudaErrorCudartUnloading", "driver shutting down"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidPitchValue, "cudaErrorInvalidPitchValue", "invalid pitch argument"},
    {cudaErrorInvalidSymbol, "cudaErrorInvalidSymbol", "invalid device symbol"},
    {cudaErrorInvalidHostPointer, "cudaErrorInvalidHostPointer", "invalid host pointer"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
    {cudaErrorMissingConfiguration, "cudaErrorMissingConfiguration", "__global__ function call is not configured"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorNoKernelImageForDevice, "cudaErrorNoKernelImageForDevice",
     "no kernel image is available for execution on the device"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorIllegalState, "cudaErrorIllegalState", "the operation cannot be performed in the present state"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"},
    {cudaErrorLaunchTimeout, "cudaErrorLaunchTimeout", "the launch timed out and was terminated"},
    {cudaErrorAssert, "cudaErrorAssert", "device-side assert triggered"},
    {cudaErrorHardwareStackError, "cudaErrorHardwareStackError", "hardware stack error"},
    {cudaErrorIllegalInstruction, "cudaErrorIllegalInstruction", "an illegal instruction was encountered"},
    {cudaErrorMisalignedAddress, "cudaErrorMisalignedAddress", "misaligned address"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotPermitted, "cudaErrorNotPermitted", "operation not permitted"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureMerge, "cudaErrorStreamCaptureMerge",
     "operation would result in a merge of separate capture sequences"},
    {cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched",
     "capture was not ended in the same stream as it began"},
    {cudaErrorStreamCaptureUnjoined, "cudaErrorStreamCaptureUnjoined", "capturing stream has unjoined work"},
    {cudaErrorStreamCaptureIsolation, "cudaErrorStreamCaptureIsolation",
     "dependency created on uncaptured work in another stream"},
    {cudaErrorStreamCaptureImplicit, "cudaErrorStreamCaptureImplicit",
     "operation would make the legacy stream depend on a capturing blocking stream"},
    {cudaErrorCapturedEvent, "cudaErrorCapturedEvent",
     "operation not permitted on an event last recorded in a capturing stream"},
    {cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread",
     "attempt to terminate a thread-local capture sequence from another thread"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const ErrorText* find_error_text(cudaError_t code) {
    for (const ErrorText& entry : kErrorTexts) {
        if (entry.code == code) {
            return &entry;
        }
    }
    return nullptr;
}

enum class Side { device, pinned_host, pageable_host };

// Classifies one end of a copy. A pointer inside a device allocation must have `count` bytes
// there; otherwise the copy would run off the allocation.
cudaError_t classify(const void* ptr, std::size_t count, const char* api, const char* role, Side* side) {
    AllocationInfo info;
    const bool allocated = find_allocation(ptr, 0, &info);
    if (allocated && info.kind == MemoryKind::device) {
        const std::size_t offset = reinterpret_cast<std::uintptr_t>(ptr) - info.base;
        if (count > info.size - offset) {
            return fail(cudaErrorInvalidValue, api,
                        format("%s %p: %zu bytes from offset %zu overrun %s", role, ptr, count, offset,
                               describe(info).c_str()));
        }
        *side = Side::device;
        return cudaSuccess;
    }
    if (ptr == nullptr) {
        return fail(cudaErrorInvalidValue, api, format("%s is a null pointer", role));
    }
    *side = allocated ? Side::pinned_host : Side::pageable_host;
    return cudaSuccess;
}

// Validates a copy as the reference documents it; on success sets both sides.
cudaError_t check_copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind, const char* api,
                       Side* dst_side, Side* src_side) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
        return fail(cudaErrorInvalidMemcpyDirection, api, format("unknown cudaMemcpyKind %d", static_cast<int>(kind)));
    }
    if (count == 0) {
        return cudaSuccess;  // a no-op whatever the pointers; submit_copy ignores it
    }
    if (cudaError_t e = classify(dst, count, api, "destination", dst_side); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = classify(src, count, api, "source", src_side); e != cudaSuccess) {
        return e;
    }
    if (kind != cudaMemcpyDefault) {
        const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
        const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
        static constexpr const char* kKindNames[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice",
                                                     "cudaMemcpyDeviceToHost", "cudaMemcpyDeviceToDevice"};
        if ((*src_side == Side::device) != src_device) {
            return fail(cudaErrorInvalidValue, api,
                        format("%s: the source %s is %s memory", kKindNames[kind], describe_pointer(src).c_str(),
                               *src_side == Side::device ? "device" : "host"));
        }
        if ((*dst_side == Side::device) != dst_device) {
            return fail(cudaErrorInvalidValue, api,
                        format("%s: the destination %s is %s memory", kKindNames[kind], describe_pointer(dst).c_str(),
                               *dst_side == Side::device ? "device" : "host"));
        }
    }
    return cudaSuccess;
}

// Submits a validated copy to `stream` (the legacy default stream for the synchronous API) with the
// host synchronization of the reference's "API synchronization behavior":
//   - host to host: fully synchronous;
//   - from pageable host memory: the source is staged now (the caller may reuse it when the call
//     returns) and the device write is ordinary stream work;
//   - to pageable host memory: synchronous (cudaMemcpy must be; for cudaMemcpyAsync the reference
//     says it "might be", and a later write into a freed std::vector would help nobody);
//   - between pinned host memory and the device: synchronous for cudaMemcpy, stream work for
//     cudaMemcpyAsync, reading or writing the pinned buffer only when it runs;
//   - device to device: stream work for both (cudaMemcpy does no host-side synchronization).
cudaError_t submit_copy(void* dst, const void* src, std::size_t count, Side dst_side, Side src_side,
                        cudaStream_t stream, bool asynchronous) {
    if (count == 0) {
        return cudaSuccess;
    }
    if (src_side == Side::pageable_host && dst_side == Side::device) {
        const auto* begin = static_cast<const unsigned char*>(src);
        auto staged = std::make_shared<const std::vector<unsigned char>>(begin, begin + count);
        return submit(stream, [dst, staged] {
            std::memcpy(dst, staged->data(), staged->size());
            return cudaSuccess;
        });
    }
    StreamWork work = [dst, src, count] {
        std::memmove(dst, src, count);
        return cudaSuccess;
    };
    const bool host_to_host = dst_side != Side::device && src_side != Side::device;
    const bool device_to_device = dst_side == Side::device && src_side == Side::device;
    if (host_to_host || dst_side == Side::pageable_host || (!asynchronous && !device_to_device)) {
        return submit_and_wait(stream, std::move(work));
    }
    return submit(stream, std::move(work));
}

// Whether the reference's "API synchronization behavior" lets a valid copy make the host wait for the
// device: cudaMemcpy unless device to device (a pageable source is staged after a stream
// synchronization, a pinned one synchronously, a host destination is written before it returns);
// cudaMemcpyAsync to or from pageable memory ("might be synchronous") and host to host ("fully
// synchronous"). Counted for host_synchronization_count() whether or not the emulator waits here.
bool copy_blocks_host(Side dst_side, Side src_side, bool asynchronous) {
    const bool device_to_device = dst_side == Side::device && src_side == Side::device;
    const bool host_to_host = dst_side != Side::device && src_side != Side::device;
    const bool pageable = dst_side == Side::pageable_host || src_side == Side::pageable_host;
    return asynchronous ? host_to_host || pageable : !device_to_device;
}

cudaError_t copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind, cudaStream_t stream,
                 bool asynchronous, const char* api) {
    Side dst_side = Side::device;
    Side src_side = Side::device;
    if (cudaError_t e = check_copy(dst, src, count, kind, api, &dst_side, &src_side); e != cudaSuccess) {
        return e;
    }
    if (count > 0 && copy_blocks_host(dst_side, src_side, asynchronous)) {
      // Stream capture: a copy the host waits for cannot become a graph node, and the synchronous
      // API is one of the calls a capture prohibits.
      if (cudaError_t e = asynchronous
                              ? refuse_on_capturing_stream(stream, api, "copies to or from pageable host memory")
                              : check_unsafe_call(api);
          e != cudaSuccess) {
        return e;
      }
        count_host_synchronization();
    }
    return submit_copy(dst, src, count, dst_side, src_side, stream, asynchronous);
}

// Both cudaMemset (on the legacy default stream) and cudaMemsetAsync are asynchronous for device
// memory, the only target emulated.
cudaError_t fill(void* ptr, int value, std::size_t count, cudaStream_t stream, const char* api) {
    if (count == 0) {
        return cudaSuccess;
    }
    AllocationInfo info;
    if (!find_allocation(ptr, count, &info) || info.kind != MemoryKind::device) {
        return fail(cudaErrorInvalidValue, api,
                    format("%zu bytes at %s are not inside one device allocation", count, describe_pointer(ptr).c_str()));
    }
    return submit(stream, [ptr, value, count] {
        std::memset(ptr, value, count);
        return cudaSuccess;
    });
}

}  // namespace

void report_error(const std::string& message) {
    ErrorLog& log = error_log();
    {
        std::lock_guard lock(log.mutex);
        ++log.count;
        log.last = message;
    }
    std::fprintf(stderr, "cudaemu: %s\n", message.c_str());
    std::fflush(stderr);
}

cudaError_t set_last_error(cudaError_t code) {
    if (code != cudaSuccess) {
        tls_last_error = code;
    }
    return code;
}

cudaError_t fail(cudaError_t code, const char* api, const std::string& message) {
    report_error(format("%s: %s (%s)", api, message.c_str(), cudaGetErrorName(code)));
    return set_last_error(code);
}

std::string format(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list copy_args;
    va_copy(copy_args, args);
    const int length = std::vsnprintf(nullptr, 0, fmt, copy_args);
    va_end(copy_args);
    std::string text(static_cast<std::size_t>(std::max(length, 0)), '\0');
    std::vsnprintf(text.data(), text.size() + 1, fmt, args);
    va_end(args);
    return text;
}

namespace {

Settings& settings() {
    static Settings* instance = new Settings(load_settings());
    return *instance;
}

}  // namespace

std::size_t fiber_stack_bytes() {
    std::lock_guard lock(settings_mutex());
    return settings().stack_bytes;
}

bool tf32_allowed() {
    std::lock_guard lock(settings_mutex());
    return settings().tf32_allowed;
}

std::size_t dynamic_shared_limit(const void* kernel) {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    auto it = objs.dynamic_shared_limits.find(kernel);
    return it == objs.dynamic_shared_limits.end() ? kSharedMemPerBlock : it->second;
}

void count_launch() {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    ++objs.launches;
}

void count_host_synchronization() {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    ++objs.host_synchronizations;
}

}  // namespace cudaemu::detail

// ---- control API --------------------------------------------------------------------------------
namespace cudaemu {

void set_device_memory_capacity(std::size_t bytes) {
    std::lock_guard lock(detail::settings_mutex());
    detail::settings().device_capacity = bytes;
}

std::size_t device_memory_capacity() {
    std::lock_guard lock(detail::settings_mutex());
    return detail::settings().device_capacity;
}

void set_checking_mode(bool enabled) {
    std::lock_guard lock(detail::settings_mutex());
    detail::settings().checking = enabled;
}

bool checking_mode() {
    std::lock_guard lock(detail::settings_mutex());
    return detail::settings().checking;
}

void set_worker_count(int workers) {
    std::lock_guard lock(detail::settings_mutex());
    detail::settings().workers = std::max(1, workers);
}

int worker_count() {
    std::lock_guard lock(detail::settings_mutex());
    return detail::settings().workers;
}

std::uint64_t error_count() {
    detail::ErrorLog& log = detail::error_log();
    std::lock_guard lock(log.mutex);
    return log.count;
}

std::string last_error_message() {
    detail::ErrorLog& log = detail::error_log();
    std::lock_guard lock(log.mutex);
    return log.last;
}

std::uint64_t launch_count() {
    detail::Objects& objs = detail::objects();
    std::lock_guard lock(objs.mutex);
    return objs.launches;
}

std::uint64_t host_synchronization_count() {
    detail::Objects& objs = detail::objects();
    std::lock_guard lock(objs.mutex);
    return objs.host_synchronizations;
}

}  // namespace cudaemu

// ---- runtime C API ------------------------------------------------------------------------------
using cudaemu::detail::fail;
using cudaemu::detail::format;

extern "C" {

cudaError_t cudaGetLastError(void) {
    const cudaError_t code = cudaemu::detail::tls_last_error;
    cudaemu::detail::tls_last_error = cudaSuccess;
    return code;
}

cudaError_t cudaPeekAtLastError(void) { return cudaemu::detail::tls_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
    const auto* entry = cudaemu::detail::find_error_text(error);
    return entry != nullptr ? entry->name : "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
    const auto* entry = cudaemu::detail::find_error_text(error);
    return entry != nullptr ? entry->text : "unrecognized error code";
}

cudaError_t cudaDriverGetVersion(int* driverVersion) {
    if (driverVersion == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaDriverGetVersion", "null output pointer");
    }
    *driverVersion = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* runtimeVersion) {
    if (runtimeVersion == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaRuntimeGetVersion", "null output pointer");
    }
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
    if (count == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaGetDeviceCount", "null output pointer");
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0) {
        return fail(cudaErrorInvalidDevice, "cudaSetDevice", format("device %d does not exist (one device, 0)", device));
    }
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    if (device == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaGetDevice", "null output pointer");
    }
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
    if (prop == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties", "null output pointer");
    }
    if (device != 0) {
        return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties", format("device %d does not exist", device));
    }
    *prop = cudaDeviceProp{};
    std::snprintf(prop->name, sizeof prop->name, "cudaemu CPU emulation of an sm_90 GPU");
    prop->totalGlobalMem = cudaemu::device_memory_capacity();
    prop->sharedMemPerBlock = cudaemu::detail::kSharedMemPerBlock;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->memPitch = 2147483647;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = 9;
    prop->minor = 0;
    prop->textureAlignment = 512;
    prop->multiProcessorCount = 132;
    prop->integrated = 0;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->ECCEnabled = 0;
    prop->asyncEngineCount = 3;
    prop->unifiedAddressing = 1;
    prop->memoryBusWidth = 5120;
    prop->l2CacheSize = 50 * 1024 * 1024;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->sharedMemPerMultiprocessor = cudaemu::detail::kSharedMemPerMultiprocessor;
    prop->regsPerMultiprocessor = 65536;
    prop->managedMemory = 0;
    prop->cooperativeLaunch = 0;
    prop->sharedMemPerBlockOptin = cudaemu::detail::kSharedMemPerBlockOptin;
    prop->maxBlocksPerMultiProcessor = 32;
    prop->reservedSharedMemPerBlock = 1024;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
    if (value == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute", "null output pointer");
    }
    cudaDeviceProp prop;
    if (cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) {
        return e;
    }
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock: *value = prop.maxThreadsPerBlock; break;
        case cudaDevAttrMaxBlockDimX: *value = prop.maxThreadsDim[0]; break;
        case cudaDevAttrMaxBlockDimY: *value = prop.maxThreadsDim[1]; break;
        case cudaDevAttrMaxBlockDimZ: *value = prop.maxThreadsDim[2]; break;
        case cudaDevAttrMaxGridDimX: *value = prop.maxGridSize[0]; break;
        case cudaDevAttrMaxGridDimY: *value = prop.maxGridSize[1]; break;
        case cudaDevAttrMaxGridDimZ: *value = prop.maxGridSize[2]; break;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(prop.sharedMemPerBlock); break;
        case cudaDevAttrWarpSize: *value = prop.warpSize; break;
        case cudaDevAttrMultiProcessorCount: *value = prop.multiProcessorCount; break;
        // An H100 SXM's peak clocks (kHz): 1980 MHz SMs; HBM3 at 2619 MHz on a 5120-bit bus, 3.35 TB/s.
        case cudaDevAttrClockRate: *value = 1980000; break;
        case cudaDevAttrMemoryClockRate: *value = 2619000; break;
        case cudaDevAttrGlobalMemoryBusWidth: *value = prop.memoryBusWidth; break;
        case cudaDevAttrL2CacheSize: *value = prop.l2CacheSize; break;
        case cudaDevAttrMaxThreadsPerMultiProcessor: *value = prop.maxThreadsPerMultiProcessor; break;
        case cudaDevAttrComputeCapabilityMajor: *value = prop.major; break;
        case cudaDevAttrComputeCapabilityMinor: *value = prop.minor; break;
        case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(prop.sharedMemPerMultiprocessor); break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(prop.sharedMemPerBlockOptin); break;
        default:
            return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute",
                        format("attribute %d is not emulated", static_cast<int>(attr)));
    }
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
    if (free == nullptr || total == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaMemGetInfo", "null output pointer");
    }
    const std::size_t capacity = cudaemu::device_memory_capacity();
    const std::size_t in_use = cudaemu::memory_stats().bytes_in_use;
    *total = capacity;
    *free = capacity > in_use ? capacity - in_use : 0;
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes* attributes, const void* ptr) {
    if (attributes == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes", "null output pointer");
    }
    cudaemu::detail::AllocationInfo info;
    void* p = const_cast<void*>(ptr);
    if (cudaemu::detail::find_allocation(ptr, 0, &info)) {
        const bool device = info.kind == cudaemu::detail::MemoryKind::device;
        attributes->type = device ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
        attributes->device = 0;
        attributes->devicePointer = p;
        attributes->hostPointer = device ? nullptr : p;
    } else {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;  // cudaInvalidDeviceId
        attributes->devicePointer = nullptr;
        attributes->hostPointer = p;
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
    return cudaemu::detail::copy(dst, src, count, kind, nullptr, false, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream) {
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaMemcpyAsync"); e != cudaSuccess) {
        return e;
    }
    return cudaemu::detail::copy(dst, src, count, kind, stream, true, "cudaMemcpyAsync");
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
    return cudaemu::detail::fill(devPtr, value, count, nullptr, "cudaMemset");
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaMemsetAsync"); e != cudaSuccess) {
        return e;
    }
    return cudaemu::detail::fill(devPtr, value, count, stream, "cudaMemsetAsync");
}

// __constant__ and __device__ variables are host globals here: the symbol is a device-side
// destination, and the copy is ordered on the legacy default stream like cudaMemcpy.
cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* src, size_t count, size_t offset,
                               enum cudaMemcpyKind kind) {
    if (symbol == nullptr || src == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaMemcpyToSymbol", "null symbol or source");
    }
    if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault) {
        return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpyToSymbol", "the copy must go to the device");
    }
    cudaemu::detail::AllocationInfo info;
    const bool allocated = cudaemu::detail::find_allocation(src, 0, &info);
    using cudaemu::detail::Side;
    const Side src_side = !allocated                                          ? Side::pageable_host
                          : info.kind == cudaemu::detail::MemoryKind::device ? Side::device
                                                                              : Side::pinned_host;
    if (count > 0 && src_side != Side::device) {
        cudaemu::detail::count_host_synchronization();
    }
    return cudaemu::detail::submit_copy(static_cast<char*>(const_cast<void*>(symbol)) + offset, src, count,
                                        Side::device, src_side, nullptr, false);
}

cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
    if (func == nullptr) {
        return fail(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute", "null kernel");
    }
    switch (attr) {
        case cudaFuncAttributeMaxDynamicSharedMemorySize: {
            if (value < 0 || static_cast<std::size_t>(value) > cudaemu::detail::kSharedMemPerBlockOptin) {
                return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute",
                            format("cudaFuncAttributeMaxDynamicSharedMemorySize %d is outside [0, %zu]", value,
                                   cudaemu::detail::kSharedMemPerBlockOptin));
            }
            cudaemu::detail::Objects& objs = cudaemu::detail::objects();
            std::lock_guard lock(objs.mutex);
            objs.dynamic_shared_limits[func] = static_cast<std::size_t>(value);
            return cudaSuccess;
        }
        case cudaFuncAttributePreferredSharedMemoryCarveout:
            if (value < -1 || value > 100) {
                return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute",
                            format("cudaFuncAttributePreferredSharedMemoryCarveout %d is outside [-1, 100]", value));
            }
            return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute",
                format("attribute %d is not emulated", static_cast<int>(attr)));
}

}  // extern "C"

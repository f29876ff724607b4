// Where a tensor lives. Ops dispatch on their inputs' device with a plain switch.
//
// A CUDA device carries its context (stream, cuBLAS/cuDNN handles, caching allocator; see
// engine/device_context.h): there is no global "current device" and no global handle. A program
// opens the devices it uses with open_cuda_device() and passes the Device around; tensors keep
// their device's context alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/precision.h"

namespace strata {

class DeviceContext;

struct Device {
  enum class Type : uint8_t { cpu, cuda };
  Type type = Type::cpu;
  int index = 0;
  std::shared_ptr<DeviceContext> context;  // null for the CPU

  static Device cpu() { return Device{}; }
  bool is_cpu() const { return type == Type::cpu; }
  bool is_cuda() const { return type == Type::cuda; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && a.index == b.index && a.context == b.context;
  }
};

// Opens CUDA device `index` with a new context (its own stream and handles) computing at `precision`
// (engine/precision.h). Throws strata::Error when this build has no CUDA backend, or the device does
// not exist.
Device open_cuda_device(int index = 0, Precision precision = Precision::f32);

// Parses a device as the command line gives it: "cpu", "cuda" (device 0) or "cuda:<index>", opening
// the CUDA device (open_cuda_device) at `precision`. Throws strata::Error naming the text as the
// --device option ("--device 'gpu': expected cpu, cuda or cuda:<index>"), open_cuda_device's error,
// or a precision other than f32 on the CPU (whose kernels compute f32).
Device parse_device(const std::string& text, Precision precision = Precision::f32);

// The --device a command runs on when none is given: "cuda" when this build has the real CUDA
// backend and a GPU is visible, else "cpu" (an emulated backend is for tests, never a default).
std::string default_device_text();

// The --precision a command runs at when none is given: tf32 on a CUDA device, f32 on the CPU.
Precision default_precision(const std::string& device_text);

// Whether this build has a CUDA backend ("real", "emulated" or "" for a CPU-only build).
const char* cuda_backend();

// Whether `device` is a CUDA device of the emulated backend (tests/cudaemu): exact, but it runs on
// the CPU, many times slower than the CPU backend.
bool is_emulated(const Device& device);
// How headers show a device: "cuda:0 (emulated on the CPU)" for an emulated one, else str().
std::string device_label(const Device& device);
// The one-line warning (newline included) a command prints when `--device <text>` opened an
// emulated device, or "".
std::string emulated_device_warning(const Device& device, const std::string& text);

}  // namespace strata

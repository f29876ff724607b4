#include "engine/device.h"

#include <exception>
#include <string>

#include "engine/error.h"

namespace strata {

Device parse_device(const std::string& text, Precision precision) {
  if (text == "cpu") {
    check(precision == Precision::f32, "--precision ", precision_name(precision),
          " is a CUDA math mode: the CPU's kernels compute f32 (give --precision f32 or a CUDA --device)");
    return Device::cpu();
  }
  if (text == "cuda") return open_cuda_device(0, precision);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string index = text.substr(5);
    size_t used = 0;
    int i = -1;
    try {
      i = std::stoi(index, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == index.size() && !index.empty() && i >= 0, "--device '", text, "': expected cpu, cuda or cuda:<index>");
    return open_cuda_device(i, precision);
  }
  throw Error(cat("--device '", text, "': expected cpu, cuda or cuda:<index>"));
}

Precision default_precision(const std::string& device_text) {
  return device_text.rfind("cuda", 0) == 0 ? Precision::tf32 : Precision::f32;
}

bool is_emulated(const Device& device) { return device.is_cuda() && std::string(cuda_backend()) == "emulated"; }

std::string device_label(const Device& device) {
  return is_emulated(device) ? device.str() + " (emulated on the CPU)" : device.str();
}

std::string emulated_device_warning(const Device& device, const std::string& text) {
  if (!is_emulated(device)) return "";
  return cat("warning: --device ", text, ": this build's CUDA backend is emulated on the CPU (STRATA_CUDA_EMULATION, ",
             "for testing), much slower than --device cpu\n");
}

#if !defined(STRATA_HAVE_CUDA)
// CPU-only build; the CUDA backend's versions are in engine/cuda/context.cpp.
Device open_cuda_device(int index, Precision) {
  throw Error(cat("open_cuda_device(", index,
                  "): this strata build has no CUDA backend (configure with -DSTRATA_CUDA=ON on a machine with the "
                  "CUDA toolkit, cuBLAS and cuDNN, or -DSTRATA_CUDA_EMULATION=ON to run the backend on the CPU)"));
}

const char* cuda_backend() { return ""; }

std::string default_device_text() { return "cpu"; }
#endif

}  // namespace strata

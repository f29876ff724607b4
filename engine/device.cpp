#include "engine/device.h"

#include "engine/error.h"

namespace strata {

#if !defined(STRATA_HAVE_CUDA)
// CPU-only build; the CUDA backend's versions are in engine/cuda/context.cpp.
Device open_cuda_device(int index) {
  throw Error(cat("open_cuda_device(", index,
                  "): this strata build has no CUDA backend (configure with -DSTRATA_CUDA=ON on a machine with the "
                  "CUDA toolkit, cuBLAS and cuDNN, or -DSTRATA_CUDA_EMULATION=ON to run the backend on the CPU)"));
}

const char* cuda_backend() { return ""; }
#endif

}  // namespace strata

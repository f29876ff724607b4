#include "engine/version.h"

#include "engine/device.h"
#include "engine/error.h"

namespace strata {

const char* version() { return STRATA_VERSION; }

std::string build_description() {
  const std::string cuda = cuda_backend();
  return cat("strata ", version(), " (git ", git_revision(), "), backends: cpu",
             cuda.empty() ? std::string() : cat(", cuda (", cuda, ")"));
}

}  // namespace strata

// What this strata is: its version (the CMake project's), the git revision it was built from and
// the backends compiled in. `strata --version` prints build_description().
#pragma once

#include <string>

namespace strata {

const char* version();       // "0.1.0"
const char* git_revision();  // `git describe --always --dirty` at build time, or "unknown"
// "strata 0.1.0 (git 0123456789ab), backends: cpu, cuda (emulated)"
std::string build_description();

}  // namespace strata

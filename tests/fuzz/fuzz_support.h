// What every fuzz target shares. A target feeds one input to a parser; strata::Error (a clear
// message for bad input) is the expected outcome and is swallowed. Anything else is a finding
// that libFuzzer reports with the input: another exception type (std::terminate), a crash, a
// sanitizer report, a hang (-timeout), a huge allocation (-malloc_limit_mb), or a property of an
// accepted input that does not hold (expect()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace strata::fuzz {

inline std::string bytes_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs `parse`; a strata::Error is the clear refusal we want for bad input.
template <class F>
void refuse_clearly(F&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

// A property every accepted input must have; a violation aborts so libFuzzer keeps the input.
inline void expect(bool holds, const char* property) {
  if (!holds) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", property);
    std::abort();
  }
}

}  // namespace strata::fuzz

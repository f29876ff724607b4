// Comparison of a tensor against a reference with the project tolerances. A failure message names
// the maximum absolute and relative errors and the index (and NHWC coordinates) where the worst
// element is.
#pragma once

#include <string>

#include "engine/tensor.h"
#include "tests/support/tolerances.h"

namespace strata::test {

struct Comparison {
  bool ok = false;
  double max_abs_error = 0;
  double max_rel_error = 0;
  std::string message;
};

Comparison compare(const Tensor& actual, const Tensor& expected, Tolerance tolerance);
inline Comparison compare(const Tensor& actual, const Tensor& expected) {
  return compare(actual, expected, tolerance_for(actual.dtype()));
}

}  // namespace strata::test

// CHECK_CLOSE(actual, expected[, tolerance]): a Catch2 check that prints the comparison on failure.
#define STRATA_CHECK_CLOSE_IMPL(what, ...)                     \
  do {                                                         \
    auto strata_cmp_ = ::strata::test::compare(__VA_ARGS__);   \
    INFO(what << ": " << strata_cmp_.message);                 \
    CHECK(strata_cmp_.ok);                                     \
  } while (false)
#define CHECK_CLOSE(...) STRATA_CHECK_CLOSE_IMPL(#__VA_ARGS__, __VA_ARGS__)

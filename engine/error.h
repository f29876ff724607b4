// Errors. Library code throws strata::Error with a message that names the operation, the
// offending shapes/dtypes/devices or file, and what was expected; only main() decides to exit.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace strata {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A device (or the host) could not serve an allocation: what a caller that can shrink its work (a
// smaller batch) catches.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Concatenates anything streamable into one string: cat("conv2d: got ", x.shape_str()).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// check(cond, "op: message ", value, ...) throws Error(message) when cond is false.
template <class... Args>
void check(bool condition, Args&&... message) {
  if (!condition) throw Error(cat(std::forward<Args>(message)...));
}

}  // namespace strata

// What the code under test writes to std::cerr while a CaptureStderr lives (the data layer logs
// skipped samples there), for tests that check a message is written, and how many times.
#pragma once

#include <iostream>
#include <sstream>
#include <string>

namespace strata::test {

class CaptureStderr {
 public:
  CaptureStderr() : previous_(std::cerr.rdbuf(captured_.rdbuf())) {}
  ~CaptureStderr() { std::cerr.rdbuf(previous_); }
  CaptureStderr(const CaptureStderr&) = delete;
  CaptureStderr& operator=(const CaptureStderr&) = delete;

  std::string text() const { return captured_.str(); }
  // Occurrences of `what` in the captured text.
  int count(const std::string& what) const {
    const std::string all = text();
    int n = 0;
    for (size_t at = all.find(what); at != std::string::npos; at = all.find(what, at + what.size())) ++n;
    return n;
  }

 private:
  std::ostringstream captured_;
  std::streambuf* previous_;
};

}  // namespace strata::test

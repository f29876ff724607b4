// Stopping long work cleanly on SIGINT / SIGTERM.
//
//   StopFlag       a stop request: 0, or the number of the signal that asked. Library code polls it at
//                  its safe points (a relaxed load of a lock-free atomic on the host, no device wait)
//                  and, when it is raised, finishes what it must and throws Interrupted.
//   StopOnSignals  for main() and app code only: while it lives, the first SIGINT or SIGTERM raises its
//                  flag and restores both signals' default action, so a second one ends the process
//                  at once; its destructor restores the actions it replaced. The handler does nothing
//                  else (no allocation, no I/O). One may live at a time (a second is an error).
//   Interrupted    what library code throws when it stopped for a request: the signal, and the
//                  checkpoint that resumes the work ("" when there is none) with the step it belongs
//                  to (-1 when none). main() reports it and exits with 128 + signal.
#pragma once

#include <signal.h>

#include <atomic>
#include <string>
#include <utility>

#include "engine/error.h"

namespace strata {

class StopFlag {
 public:
  int requested() const noexcept { return signal_.load(std::memory_order_relaxed); }
  void request(int signal) noexcept { signal_.store(signal, std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only touch a lock-free atomic");
  std::atomic<int> signal_{0};
};

class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  const StopFlag& flag() const { return flag_; }

 private:
  StopFlag flag_;
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

// "SIGINT", "SIGTERM", else "signal N".
std::string signal_name(int signal);

class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message, std::string checkpoint = {}, int step = -1)
      : Error(message), signal_(signal), checkpoint_(std::move(checkpoint)), step_(step) {}
  int signal() const { return signal_; }
  const std::string& checkpoint() const { return checkpoint_; }
  int step() const { return step_; }

 private:
  int signal_;
  std::string checkpoint_;
  int step_;
};

}  // namespace strata

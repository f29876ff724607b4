#include "engine/interrupt.h"

#include <cerrno>

namespace strata {

namespace {

// The flag of the live StopOnSignals: the one process-wide piece a signal handler needs.
std::atomic<StopFlag*> g_signal_flag{nullptr};
static_assert(std::atomic<StopFlag*>::is_always_lock_free);

void restore_default(int signal) {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal, &action, nullptr);
}

// Async-signal-safe: an atomic store and sigaction (errno kept for the code it interrupted).
void on_stop_signal(int signal) {
  const int saved_errno = errno;
  if (StopFlag* flag = g_signal_flag.load()) flag->request(signal);
  restore_default(SIGINT);
  restore_default(SIGTERM);
  errno = saved_errno;
}

}  // namespace

StopOnSignals::StopOnSignals() {
  StopFlag* none = nullptr;
  check(g_signal_flag.compare_exchange_strong(none, &flag_), "StopOnSignals: another one is already installed");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, SIGINT);
  sigaddset(&action.sa_mask, SIGTERM);
  // Interrupted system calls resume: a signal only raises the flag.
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
  g_signal_flag.store(nullptr);
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "signal " + std::to_string(signal);
  }
}

}  // namespace strata

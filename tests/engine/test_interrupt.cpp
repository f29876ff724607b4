// Stop requests on SIGINT / SIGTERM (engine/interrupt.h): the first signal only raises the flag (the
// process goes on), a second one ends the process at once, and the guard gives back the actions
// it replaced.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "engine/interrupt.h"

using namespace strata;

namespace {

using Handler = void (*)(int);

Handler current_handler(int signal) {
  struct sigaction action {};
  sigaction(signal, nullptr, &action);
  return action.sa_handler;
}

}  // namespace

TEST_CASE("the first SIGTERM or SIGINT raises the stop flag and the guard restores the actions it replaced", "[cpu]") {
  const Handler before_int = current_handler(SIGINT);
  const Handler before_term = current_handler(SIGTERM);
  {
    StopOnSignals signals;
    CHECK(signals.flag().requested() == 0);
    CHECK(current_handler(SIGTERM) != before_term);
    CHECK_THROWS_WITH(StopOnSignals(), Catch::Contains("already installed"));
    // raise() returns after the handler has run.
    REQUIRE(raise(SIGTERM) == 0);
    CHECK(signals.flag().requested() == SIGTERM);
    CHECK(signal_name(signals.flag().requested()) == "SIGTERM");
    // The next SIGINT or SIGTERM takes the default action: it ends the process.
    CHECK(current_handler(SIGINT) == SIG_DFL);
    CHECK(current_handler(SIGTERM) == SIG_DFL);
  }
  CHECK(current_handler(SIGINT) == before_int);
  CHECK(current_handler(SIGTERM) == before_term);
  StopOnSignals again;  // the slot is free again
  CHECK(again.flag().requested() == 0);
}

TEST_CASE("a second signal ends the process at once", "[cpu]") {
  // The child only makes async-signal-safe calls (this process may run other threads).
  const pid_t child = ::fork();
  if (child == 0) {
    StopOnSignals signals;
    raise(SIGINT);
    if (signals.flag().requested() != SIGINT) ::_exit(3);
    raise(SIGTERM);
    ::_exit(0);  // not reached when the second signal ends the process
  }
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
}

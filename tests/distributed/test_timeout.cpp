// The collectives' timeout (engine/distributed/communicator.h): a rank that never comes to a barrier
// makes the waiting rank end the whole run after --dist-timeout, naming the collective, instead of
// hanging. Hidden ([.]): it ends the process, so ctest runs it alone (distributed.timeout_ends_the_run)
// and reads the message.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/distributed/world.h"

using namespace strata;
using strata::testing::world;

TEST_CASE("a rank that does not come to a collective ends the run after the timeout", "[.][timeout]") {
  std::unique_ptr<distributed::Communicator> impatient = distributed::make_communicator(
      strata::testing::mpi_session(), {.backend = distributed::CommBackend::mpi, .timeout_seconds = 1});
  if (world().rank() == 0) {
    impatient->barrier();
    FAIL("the barrier returned without rank 1");
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(100));  // ended by rank 0's abort long before
  }
}

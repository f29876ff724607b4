// The main of the distributed suite, which runs as every rank of `mpirun -np 2`: MPI is initialised
// once for the process (MpiSession) around Catch2's session, the world communicator is what the tests
// use (world.h), and a failure on any rank fails the run (the ranks' exit statuses are reduced).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "engine/distributed/communicator.h"
#include "tests/distributed/world.h"

namespace {
strata::distributed::Communicator* g_world = nullptr;
strata::distributed::MpiSession* g_mpi = nullptr;
}  // namespace

namespace strata::testing {
distributed::Communicator& world() { return *g_world; }
distributed::MpiSession& mpi_session() { return *g_mpi; }
}  // namespace strata::testing

int main(int argc, char** argv) {
  strata::distributed::MpiSession mpi;
  g_mpi = &mpi;
  std::unique_ptr<strata::distributed::Communicator> world = strata::distributed::make_communicator(
      mpi, {.backend = strata::distributed::CommBackend::mpi, .timeout_seconds = 60});
  g_world = world.get();
  const int failed = Catch::Session().run(argc, argv);
  // Every rank ends with the worst status, so mpirun and ctest see one rank's failure.
  const int64_t failures = world->all_reduce_sum(static_cast<int64_t>(failed != 0));
  if (failures > 0 && failed == 0) std::fprintf(stderr, "rank %d: another rank failed\n", world->rank());
  world.reset();
  return failures > 0 ? 1 : 0;
}

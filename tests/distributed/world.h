// The communicator of the distributed suite's process (distributed_main.cpp): every rank of the
// `mpirun -np 2` the suite runs under.
#pragma once

#include "engine/distributed/communicator.h"

namespace strata::testing {
distributed::Communicator& world();
distributed::MpiSession& mpi_session();
}  // namespace strata::testing

// The nccl backend of engine/distributed/communicator.h (make_communicator with CommBackend::nccl):
// CUDA tensors are reduced, broadcast and gathered by NCCL on the device, in the compute stream's
// order of the tensor's device, with no host synchronisation; host tensors and host values go through
// `host`, the MPI communicator of the same processes. The NCCL communicator is made at the first
// device collective (every rank makes it there, in the same program order): rank 0 draws the unique
// id and sends it over MPI. One device per rank: a tensor of another device is refused.
//
// Exists in builds with a CUDA backend and NCCL (STRATA_HAVE_NCCL: the toolkit's libnccl, or the
// emulator's NCCL over MPI, which runs the path in CI).
#pragma once

#include <memory>

#include "engine/distributed/communicator.h"

namespace strata::distributed {

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace strata::distributed

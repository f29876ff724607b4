// NCCL collectives on device memory in a stream's order: what the `nccl` backend of data-parallel
// training calls (engine/distributed/communicator.h), wrapped like every other library call of the
// CUDA backend (a failing call throws std::runtime_error naming the call and NCCL's message). With
// the emulated backend, tests/cudaemu's NCCL runs them across processes over MPI.
//
// Built when the build has NCCL (STRATA_HAVE_NCCL: the real toolkit's libnccl, or the emulator's);
// nccl_available() says so at run time, and without it every other function throws.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/cuda/backend.h"

struct ncclComm;

namespace strata::kernels::cuda {

bool nccl_available();

using NcclUniqueId = std::array<char, 128>;
enum class CollectiveType { f32, f64, bf16 };

NcclUniqueId nccl_unique_id();  // on one rank; the others receive it (over MPI)
ncclComm* nccl_init(int ranks, const NcclUniqueId& id, int rank);
void nccl_destroy(ncclComm* comm);

// data[i] = the sum over the ranks of their data[i], in place.
void nccl_all_reduce_sum(void* data, int64_t count, CollectiveType type, ncclComm* comm, const Stream& stream);
// bytes of root's data to every rank's, in place.
void nccl_broadcast(void* data, int64_t bytes, int root, ncclComm* comm, const Stream& stream);
// out (ranks x bytes) = every rank's `bytes` of in, by rank.
void nccl_all_gather(const void* in, void* out, int64_t bytes, ncclComm* comm, const Stream& stream);

}  // namespace strata::kernels::cuda

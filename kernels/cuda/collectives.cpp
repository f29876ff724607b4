#include "kernels/cuda/collectives.h"

#include <stdexcept>
#include <string>

#if STRATA_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#endif

namespace strata::kernels::cuda {

#if STRATA_HAVE_NCCL
namespace {

void check_nccl(ncclResult_t result, const char* call) {
  if (result != ncclSuccess) throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(result));
}

ncclDataType_t nccl_type(CollectiveType type) {
  switch (type) {
    case CollectiveType::f32: return ncclFloat32;
    case CollectiveType::f64: return ncclFloat64;
    case CollectiveType::bf16: return ncclBfloat16;
  }
  throw std::invalid_argument("nccl: unknown collective type");
}

}  // namespace

bool nccl_available() { return true; }

NcclUniqueId nccl_unique_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  NcclUniqueId out;
  std::memcpy(out.data(), id.internal, out.size());
  return out;
}

ncclComm* nccl_init(int ranks, const NcclUniqueId& id, int rank) {
  ncclUniqueId unique;
  std::memcpy(unique.internal, id.data(), id.size());
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, ranks, unique, rank), "ncclCommInitRank");
  return comm;
}

void nccl_destroy(ncclComm* comm) {
  if (comm != nullptr) ncclCommDestroy(comm);
}

void nccl_all_reduce_sum(void* data, int64_t count, CollectiveType type, ncclComm* comm, const Stream& stream) {
  check_nccl(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(type), ncclSum, comm, stream.handle),
             "ncclAllReduce");
}

void nccl_broadcast(void* data, int64_t bytes, int root, ncclComm* comm, const Stream& stream) {
  check_nccl(ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root, comm, stream.handle),
             "ncclBroadcast");
}

void nccl_all_gather(const void* in, void* out, int64_t bytes, ncclComm* comm, const Stream& stream) {
  check_nccl(ncclAllGather(in, out, static_cast<size_t>(bytes), ncclUint8, comm, stream.handle), "ncclAllGather");
}
#else
namespace {
[[noreturn]] void no_nccl() { throw std::runtime_error("this build of strata has no NCCL"); }
}  // namespace
bool nccl_available() { return false; }
NcclUniqueId nccl_unique_id() { no_nccl(); }
ncclComm* nccl_init(int, const NcclUniqueId&, int) { no_nccl(); }
void nccl_destroy(ncclComm*) {}
void nccl_all_reduce_sum(void*, int64_t, CollectiveType, ncclComm*, const Stream&) { no_nccl(); }
void nccl_broadcast(void*, int64_t, int, ncclComm*, const Stream&) { no_nccl(); }
void nccl_all_gather(const void*, void*, int64_t, ncclComm*, const Stream&) { no_nccl(); }
#endif

}  // namespace strata::kernels::cuda

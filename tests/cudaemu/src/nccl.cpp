// cudaemu's NCCL (include/nccl.h) over MPI: one rank per process, the emulated device's memory being
// host memory. A communicator is the MPI communicator of the processes that called ncclCommInitRank
// with the same unique id (MPI_Comm_split of the world, keyed by the id's bytes and ordered by rank),
// so the caller must have initialised MPI (strata's MpiSession does). A collective first completes
// its stream's queued work, then validates its buffers (device memory holding count elements; a
// host pointer is refused, as NCCL's registered device buffers), then runs as the blocking MPI
// collective; bf16 and f16 sums go through f32 and round once.
#include "nccl.h"

#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cudaemu/float16_bits.h"
#include "internal.h"

struct ncclComm {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
};

namespace cudaemu::detail {
namespace {

constexpr char kIdMagic[] = "cudaemu-nccl-id";

ncclResult_t refuse(ncclResult_t code, const char* api, const std::string& message) {
  report_error(format("%s: %s", api, message.c_str()));
  return code;
}

std::size_t type_bytes(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;
  }
}

// Whether [ptr, ptr + bytes) is emulated device memory; reports the problem for `api` otherwise.
bool device_buffer(const void* ptr, std::size_t bytes, const char* api, const char* role) {
  AllocationInfo info;
  if (bytes == 0) return true;
  if (!find_allocation(ptr, bytes, &info) || info.kind != MemoryKind::device) {
    report_error(
        format("%s: %s %p (%zu bytes) is not device memory: %s", api, role, ptr, bytes, describe_pointer(ptr).c_str()));
    return false;
  }
  return true;
}

ncclResult_t check_comm(ncclComm_t comm, const char* api) {
  if (comm == nullptr || comm->comm == MPI_COMM_NULL) return refuse(ncclInvalidArgument, api, "invalid communicator");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return refuse(ncclInvalidUsage, api, "MPI is not initialised");
  return ncclSuccess;
}

// In place on a copy: `count` elements of `type` summed (or maxed) over the communicator.
ncclResult_t reduce(void* data, std::size_t count, ncclDataType_t type, ncclRedOp_t op, MPI_Comm comm,
                    const char* api) {
  MPI_Op mpi_op = op == ncclSum ? MPI_SUM : op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : MPI_OP_NULL;
  if (mpi_op == MPI_OP_NULL) return refuse(ncclInvalidArgument, api, "only ncclSum, ncclMax and ncclMin are emulated");
  if (type == ncclBfloat16 || type == ncclFloat16) {
    auto* bits = static_cast<std::uint16_t*>(data);
    std::vector<float> wide(count);
    for (std::size_t i = 0; i < count; ++i) {
      wide[i] = type == ncclBfloat16 ? bfloat16_bits_to_float(bits[i]) : half_bits_to_float(bits[i]);
    }
    if (MPI_Allreduce(MPI_IN_PLACE, wide.data(), static_cast<int>(count), MPI_FLOAT, mpi_op, comm) != MPI_SUCCESS) {
      return refuse(ncclSystemError, api, "MPI_Allreduce failed");
    }
    for (std::size_t i = 0; i < count; ++i) {
      bits[i] = type == ncclBfloat16 ? float_to_bfloat16_bits(wide[i]) : float_to_half_bits(wide[i]);
    }
    return ncclSuccess;
  }
  MPI_Datatype mpi_type = type == ncclFloat32   ? MPI_FLOAT
                          : type == ncclFloat64 ? MPI_DOUBLE
                          : type == ncclInt32   ? MPI_INT32_T
                          : type == ncclInt64   ? MPI_INT64_T
                          : type == ncclUint8   ? MPI_UINT8_T
                                                : MPI_DATATYPE_NULL;
  if (mpi_type == MPI_DATATYPE_NULL) return refuse(ncclInvalidArgument, api, "data type not emulated");
  if (MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), mpi_type, mpi_op, comm) != MPI_SUCCESS) {
    return refuse(ncclSystemError, api, "MPI_Allreduce failed");
  }
  return ncclSuccess;
}

}  // namespace
}  // namespace cudaemu::detail

using namespace cudaemu::detail;

extern "C" {

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return refuse(ncclInvalidArgument, "ncclGetUniqueId", "uniqueId is null");
  std::memset(uniqueId->internal, 0, NCCL_UNIQUE_ID_BYTES);
  std::memcpy(uniqueId->internal, kIdMagic, sizeof(kIdMagic));
  std::random_device random;
  for (std::size_t i = sizeof(kIdMagic); i + 4 <= 64; i += 4) {
    const std::uint32_t word = random();
    std::memcpy(uniqueId->internal + i, &word, 4);
  }
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  const char* api = "ncclCommInitRank";
  if (comm == nullptr) return refuse(ncclInvalidArgument, api, "comm is null");
  if (std::memcmp(commId.internal, kIdMagic, sizeof(kIdMagic)) != 0) {
    return refuse(ncclInvalidArgument, api, "commId does not come from ncclGetUniqueId");
  }
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    return refuse(ncclInvalidArgument, api, format("rank %d of %d ranks is out of range", rank, nranks));
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return refuse(ncclInvalidUsage, api, "MPI is not initialised (the emulation runs over MPI)");
  std::uint32_t color = 2166136261u;  // FNV-1a of the id: the ranks sharing it form the communicator
  for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; ++i)
    color = (color ^ static_cast<unsigned char>(commId.internal[i])) * 16777619u;
  auto* made = new ncclComm;
  if (MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(color & 0x7fffffff), rank, &made->comm) != MPI_SUCCESS) {
    delete made;
    return refuse(ncclSystemError, api, "MPI_Comm_split failed");
  }
  MPI_Comm_rank(made->comm, &made->rank);
  MPI_Comm_size(made->comm, &made->size);
  if (made->size != nranks || made->rank != rank) {
    const std::string message = format("%d processes share this id, %d expected (rank %d here, %d asked)", made->size,
                                       nranks, made->rank, rank);
    MPI_Comm_free(&made->comm);
    delete made;
    return refuse(ncclInvalidUsage, api, message);
  }
  *comm = made;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm->comm != MPI_COMM_NULL) MPI_Comm_free(&comm->comm);
  delete comm;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  const char* api = "ncclAllReduce";
  if (ncclResult_t bad = check_comm(comm, api)) return bad;
  if (!is_valid_stream(stream)) return refuse(ncclInvalidArgument, api, "invalid stream");
  const std::size_t bytes = count * type_bytes(datatype);
  if (type_bytes(datatype) == 0) return refuse(ncclInvalidArgument, api, "invalid data type");
  if (!device_buffer(sendbuff, bytes, api, "sendbuff") || !device_buffer(recvbuff, bytes, api, "recvbuff")) {
    return ncclInvalidArgument;
  }
  complete_stream(stream);
  if (count == 0) return ncclSuccess;
  if (sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, bytes);
  return reduce(recvbuff, count, datatype, op, comm->comm, api);
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  const char* api = "ncclBroadcast";
  if (ncclResult_t bad = check_comm(comm, api)) return bad;
  if (!is_valid_stream(stream)) return refuse(ncclInvalidArgument, api, "invalid stream");
  if (root < 0 || root >= comm->size) return refuse(ncclInvalidArgument, api, format("root %d out of range", root));
  const std::size_t bytes = count * type_bytes(datatype);
  if (type_bytes(datatype) == 0) return refuse(ncclInvalidArgument, api, "invalid data type");
  if ((comm->rank == root && !device_buffer(sendbuff, bytes, api, "sendbuff")) ||
      !device_buffer(recvbuff, bytes, api, "recvbuff")) {
    return ncclInvalidArgument;
  }
  complete_stream(stream);
  if (count == 0) return ncclSuccess;
  if (comm->rank == root && sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, bytes);
  if (MPI_Bcast(recvbuff, static_cast<int>(bytes), MPI_BYTE, root, comm->comm) != MPI_SUCCESS) {
    return refuse(ncclSystemError, api, "MPI_Bcast failed");
  }
  return ncclSuccess;
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  const char* api = "ncclAllGather";
  if (ncclResult_t bad = check_comm(comm, api)) return bad;
  if (!is_valid_stream(stream)) return refuse(ncclInvalidArgument, api, "invalid stream");
  const std::size_t bytes = sendcount * type_bytes(datatype);
  if (type_bytes(datatype) == 0) return refuse(ncclInvalidArgument, api, "invalid data type");
  if (!device_buffer(sendbuff, bytes, api, "sendbuff") ||
      !device_buffer(recvbuff, bytes * static_cast<std::size_t>(comm->size), api, "recvbuff")) {
    return ncclInvalidArgument;
  }
  complete_stream(stream);
  if (bytes == 0) return ncclSuccess;
  std::vector<unsigned char> mine(static_cast<const unsigned char*>(sendbuff),
                                  static_cast<const unsigned char*>(sendbuff) + bytes);
  if (MPI_Allgather(mine.data(), static_cast<int>(bytes), MPI_BYTE, recvbuff, static_cast<int>(bytes), MPI_BYTE,
                    comm->comm) != MPI_SUCCESS) {
    return refuse(ncclSystemError, api, "MPI_Allgather failed");
  }
  return ncclSuccess;
}

// Group calls fuse collectives on real NCCL; here every collective already ran when it was called.
ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

}  // extern "C"

// Data parallelism's collectives (DESIGN.md "Distributed"): the processes of one training run, their
// ranks, and the all-reduce, broadcast, all-gather and barrier a data-parallel step needs. We use the
// engine the field runs on, MPI (Open MPI here), and never a home-made transport:
//
//   mpirun -np 2 build/apps/strata train ...        # two processes, ranks 0 and 1
//
//   MpiSession mpi;                                  // main: MPI_Init_thread ... MPI_Finalize
//   std::unique_ptr<Communicator> world = make_communicator(mpi, {});
//   world->all_reduce_sum(gradients);                // every rank now holds the sum
//
// Backends: `mpi` reduces host tensors with MPI; a CUDA tensor goes through a host copy (a
// synchronisation: correct everywhere, the slow path). `nccl` (engine/cuda/nccl_communicator.h)
// reduces CUDA tensors with NCCL on the device in stream order, its unique id sent over MPI, and host
// tensors and values with MPI; it exists in CUDA builds with NCCL (the emulated build's NCCL runs over
// MPI, tests/cudaemu). The timeout below covers MPI's collectives; NCCL's are asynchronous.
//
// Semantics, every rank calling the same collectives in the same order with tensors of the same shape
// and dtype (MPI's rule; a mismatch is not detected, it corrupts or hangs, which the timeout below turns
// into an error):
//   all_reduce_sum(t)   in place, t contiguous, f32 / f64 / bf16 (bf16 summed in f32, rounded once)
//   broadcast(t, root)  in place: every rank's t becomes root's
//   all_gather(t)       (W, ...t's shape) on t's device: row r is rank r's t
//   barrier()           returns when every rank has entered it
//   all_reduce_sum(int64_t), all_reduce_max(double): host values
//
// Timeout (--dist-timeout): a watchdog thread watches every collective; when one has not completed
// after `timeout` seconds (another rank failed, stopped or took another path), it prints the
// collective, the rank and the timeout to stderr and ends the run (MpiSession::abort_all: mpirun then
// stops every rank). A rank that fails with an error calls abort_all itself (main, after printing the
// error), so a failing rank stops the run instead of hanging it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace strata::distributed {

enum class CommBackend { mpi, nccl };
const char* backend_name(CommBackend backend);
// "mpi" | "nccl"; throws strata::Error naming --dist-backend otherwise.
CommBackend parse_backend(const std::string& text);

// Whether this process was started by an MPI launcher (mpirun / mpiexec / srun with PMI), read from the
// environment the launchers set, without initialising MPI. A process started alone is a run of one.
bool launched_by_mpi();
// The process's rank and world size as the launcher's environment gives them (0 and 1 when not
// launched by one), for messages printed before MPI is initialised.
int launcher_rank();

// MPI for the whole process: MPI_Init_thread (MPI_THREAD_MULTIPLE: the communicators' watchdogs may
// abort from their thread) in the constructor, MPI_Finalize in the destructor. main owns the one session;
// library code receives communicators, never initialises MPI itself.
class MpiSession {
 public:
  MpiSession();  // throws strata::Error when MPI was already initialised in this process
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Stops every rank of the run (MPI_Abort on the world): what main calls after printing an error.
  [[noreturn]] static void abort_all(int status);
};

struct CommunicatorOptions {
  CommBackend backend = CommBackend::mpi;
  double timeout_seconds = 600;  // per collective; > 0
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this machine
  CommBackend backend() const { return backend_; }
  double timeout_seconds() const { return timeout_seconds_; }

  virtual void all_reduce_sum(Tensor& t) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual Tensor all_gather(const Tensor& t) = 0;
  virtual void barrier() = 0;
  virtual int64_t all_reduce_sum(int64_t value) = 0;
  virtual double all_reduce_max(double value) = 0;

 protected:
  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  CommBackend backend_ = CommBackend::mpi;
  double timeout_seconds_ = 600;
};

// The world of this run (every process mpirun started) over `options.backend`. Throws strata::Error for
// the nccl backend in a build without it, and for a timeout <= 0.
std::unique_ptr<Communicator> make_communicator(MpiSession& session, const CommunicatorOptions& options);

}  // namespace strata::distributed

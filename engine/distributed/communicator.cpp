#include "engine/distributed/communicator.h"

#if STRATA_HAVE_MPI
#include <mpi.h>
#endif

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/error.h"

namespace strata::distributed {

namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// Open MPI, MPICH / Intel MPI (PMI) and PMIx-launched processes.
const char* const kRankVariables[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};

int first_integer(const char* const* names, size_t count, int fallback) {
  for (size_t i = 0; i < count; ++i) {
    if (const char* value = env(names[i])) return std::atoi(value);
  }
  return fallback;
}

#if STRATA_HAVE_MPI
std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

void check_mpi(int code, const char* what) {
  check(code == MPI_SUCCESS, "distributed: ", what, " failed: ", mpi_error_text(code));
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommunicatorOptions& options) {
    backend_ = CommBackend::mpi;
    timeout_seconds_ = options.timeout_seconds;
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    // Errors come back as codes (then strata::Error), not as MPI's default abort.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_size_);
    MPI_Comm local;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
  }
  ~MpiCommunicator() override {
    // A communicator with a collective still pending (after a timeout) cannot be freed safely.
    if (!broken_) MPI_Comm_free(&comm_);
  }

  void all_reduce_sum(Tensor& t) override {
    check_usable("all_reduce_sum");
    check(t.defined() && t.is_contiguous(), "distributed all_reduce_sum: expected a defined contiguous tensor, got ",
          t.defined() ? t.describe() : std::string("undefined tensor"));
    const DType dtype = t.dtype();
    check(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16,
          "distributed all_reduce_sum: expected an f32, f64 or bf16 tensor, got ", t.describe());
    if (t.numel() == 0) return;
    // bf16 has no MPI type: summed in f32 and rounded once. A device tensor goes through the host.
    const bool stage = dtype == DType::bf16 || !t.device().is_cpu();
    Tensor host = stage ? t.to(Device::cpu()).to(dtype == DType::bf16 ? DType::f32 : dtype) : t;
    MPI_Datatype type = host.dtype() == DType::f64 ? MPI_DOUBLE : MPI_FLOAT;
    run("all_reduce_sum", [&](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, host.raw_data(), static_cast<int>(host.numel()), type, MPI_SUM, comm_,
                            request);
    });
    if (stage) t.copy_(host);
  }

  void broadcast(Tensor& t, int root) override {
    check_usable("broadcast");
    check(root >= 0 && root < world_size_, "distributed broadcast: root ", root, " is not a rank of a world of ",
          world_size_);
    check(t.defined() && t.is_contiguous(), "distributed broadcast: expected a defined contiguous tensor, got ",
          t.defined() ? t.describe() : std::string("undefined tensor"));
    if (t.numel() == 0) return;
    const bool stage = !t.device().is_cpu();
    Tensor host = stage ? t.to(Device::cpu()) : t;
    run("broadcast", [&](MPI_Request* request) {
      return MPI_Ibcast(host.raw_data(), static_cast<int>(host.nbytes()), MPI_BYTE, root, comm_, request);
    });
    if (stage) t.copy_(host);
  }

  Tensor all_gather(const Tensor& t) override {
    check_usable("all_gather");
    check(t.defined(), "distributed all_gather: expected a defined tensor");
    Tensor local = t.to(Device::cpu()).contiguous();
    Shape shape = t.shape();
    shape.insert(shape.begin(), world_size_);
    Tensor gathered = Tensor::empty(shape, t.dtype(), Device::cpu());
    const int bytes = static_cast<int>(local.nbytes());
    if (bytes > 0) {
      run("all_gather", [&](MPI_Request* request) {
        return MPI_Iallgather(local.raw_data(), bytes, MPI_BYTE, gathered.raw_data(), bytes, MPI_BYTE, comm_, request);
      });
    }
    return gathered.to(t.device());
  }

  void barrier() override {
    check_usable("barrier");
    run("barrier", [&](MPI_Request* request) { return MPI_Ibarrier(comm_, request); });
  }

  int64_t all_reduce_sum(int64_t value) override {
    check_usable("all_reduce_sum");
    run("all_reduce_sum", [&](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_SUM, comm_, request);
    });
    return value;
  }

  double all_reduce_max(double value) override {
    check_usable("all_reduce_max");
    run("all_reduce_max", [&](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, comm_, request);
    });
    return value;
  }

 private:
  void check_usable(const char* what) const {
    check(!broken_, "distributed ", what, ": the communicator is unusable after an earlier collective timed out");
  }

  // Starts a non-blocking collective and polls it until it completes or the timeout passes. Polling
  // backs off to short sleeps so a rank waiting for a slow one does not spin a core.
  template <class Start>
  void run(const char* what, Start&& start) {
    MPI_Request request;
    check_mpi(start(&request), what);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds_);
    for (int polls = 0;; ++polls) {
      int done = 0;
      check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (std::chrono::steady_clock::now() > deadline) {
        broken_ = true;
        throw Error("distributed " + std::string(what) + ": rank " + std::to_string(rank_) + " of " +
                    std::to_string(world_size_) + " waited more than " + std::to_string(timeout_seconds_) +
                    " s (--dist-timeout) for the other ranks: one of them failed, stopped or is stuck");
      }
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool broken_ = false;
};
#endif

}  // namespace

const char* backend_name(CommBackend backend) { return backend == CommBackend::mpi ? "mpi" : "nccl"; }

CommBackend parse_backend(const std::string& text) {
  if (text == "mpi") return CommBackend::mpi;
  if (text == "nccl") return CommBackend::nccl;
  throw Error("--dist-backend '" + text + "': expected mpi or nccl");
}

bool launched_by_mpi() {
  for (const char* name : kRankVariables) {
    if (env(name)) return true;
  }
  return false;
}

int launcher_rank() { return first_integer(kRankVariables, std::size(kRankVariables), 0); }

#if STRATA_HAVE_MPI
MpiSession::MpiSession() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  check(!initialized, "distributed: MPI is already initialised in this process (one MpiSession per process)");
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort_all(int status) {
  MPI_Abort(MPI_COMM_WORLD, status);
  std::_Exit(status);
}

std::unique_ptr<Communicator> make_communicator(MpiSession&, const CommunicatorOptions& options) {
  check(options.timeout_seconds > 0, "--dist-timeout must be > 0 seconds, got ", options.timeout_seconds);
  check(options.backend == CommBackend::mpi,
        "--dist-backend nccl: the NCCL backend is not built yet; use --dist-backend mpi (device tensors then go "
        "through the host)");
  return std::make_unique<MpiCommunicator>(options);
}
#else
namespace {
const char* kNoMpi = "this build of strata has no MPI (install Debian's libopenmpi-dev and openmpi-bin, then rebuild)";
}
MpiSession::MpiSession() { throw Error(std::string("distributed: ") + kNoMpi); }
MpiSession::~MpiSession() = default;
void MpiSession::abort_all(int status) { std::_Exit(status); }
std::unique_ptr<Communicator> make_communicator(MpiSession&, const CommunicatorOptions&) {
  throw Error(std::string("distributed: ") + kNoMpi);
}
#endif

}  // namespace strata::distributed

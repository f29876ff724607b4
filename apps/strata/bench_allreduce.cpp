// `strata bench allreduce`: the all-reduce of data-parallel training (engine/distributed/communicator.h)
// over message sizes from 1 KB to 256 MB, on N ranks of this machine, side by side in one run with a
// blocking MPI_Allreduce on the same buffer, the floor the communicator's non-blocking, timed-out
// collective is measured against. Bus bandwidth as NCCL's tests define it: algorithm bandwidth
// (bytes / time) x 2 (N - 1) / N, the bytes each link carries in a ring all-reduce.
//
// Not under mpirun, it starts itself under `mpirun -np N` (--nproc, default 2). Each time is the
// slowest rank's mean over repetitions after a warm-up.
#if STRATA_HAVE_MPI
#include <mpi.h>
#endif

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/command_line.h"
#include "engine/device.h"
#include "engine/device_context.h"
#include "engine/distributed/communicator.h"
#include "engine/error.h"
#include "incremental/launch.h"

namespace strata::app {

#if STRATA_HAVE_MPI
namespace {

const char* kBenchAllreduceHelp =
    "usage: strata bench allreduce [options]\n"
    "\n"
    "Bus bandwidth of strata's all-reduce (f32 sum, in place; the mpi backend on host tensors) for message\n"
    "sizes 1 KB to 256 MB on N processes of this machine, and of a blocking MPI_Allreduce on the same\n"
    "buffers in the same run, with the ratio strata / MPI. Starts itself under mpirun -np N.\n"
    "\n"
    "options:\n"
    "  --nproc N         processes (default 2)\n"
    "  --max-bytes B     largest message (default 268435456 = 256 MB; sizes go up by 4x from 1 KB)\n"
    "  --seconds S       minimum measured time per size and implementation (default 0.3)\n"
    "  --backend B       mpi (host tensors; default) or nccl (CUDA tensors on each rank's GPU, cuda:<local\n"
    "                    rank>, or the emulated device; MPI_Allreduce's column stays on host buffers)\n";

struct Config {
  int nproc = 2;
  int64_t max_bytes = int64_t{256} << 20;
  double seconds = 0.3;
  std::string backend = "mpi";
};

using Clock = std::chrono::steady_clock;

// Mean seconds per call of `reduce` over at least `seconds` (and 3 calls) after 2 warm-up calls, the
// slowest rank's; every rank runs the same number of calls (rank 0 decides when to stop).
template <class F>
double time_per_call(distributed::Communicator& world, double seconds, F&& reduce) {
  for (int i = 0; i < 2; ++i) reduce();
  int64_t calls = 0;
  const auto start = Clock::now();
  for (bool more = true; more;) {
    reduce();
    ++calls;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    more = world.all_reduce_max(world.rank() == 0 && (calls < 3 || elapsed < seconds) ? 1.0 : 0.0) > 0;
  }
  const double per_call = std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(calls);
  return world.all_reduce_max(per_call);
}

std::string size_text(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20)) return std::to_string(bytes >> 20) + " MB";
  return std::to_string(bytes >> 10) + " KB";
}

}  // namespace

int run_bench_allreduce(const Args& args) {
  Config config;
  CommandLine options("bench allreduce");
  options.value("--nproc", "N",
                [&](const std::string& v) { config.nproc = static_cast<int>(parse_integer("--nproc", v)); });
  options.value("--max-bytes", "B", [&](const std::string& v) { config.max_bytes = parse_integer("--max-bytes", v); });
  options.value("--seconds", "S", [&](const std::string& v) { config.seconds = parse_real("--seconds", v); });
  options.value("--backend", "B", [&](const std::string& v) {
    distributed::parse_backend(v);
    config.backend = v;
  });
  if (!options.parse(args)) {
    std::fputs(kBenchAllreduceHelp, stdout);
    return 0;
  }
  check(config.nproc >= 2, "--nproc must be >= 2 (an all-reduce needs two processes), got ", config.nproc);
  check(config.max_bytes >= 1024, "--max-bytes must be >= 1024, got ", config.max_bytes);
  check(config.seconds > 0, "--seconds must be > 0, got ", config.seconds);
  if (!distributed::launched_by_mpi()) {
    std::vector<std::string> command_line = {"strata", "bench", "allreduce"};
    command_line.insert(command_line.end(), args.begin(), args.end());
    incremental::relaunch_under_mpirun(config.nproc, command_line);
  }
  distributed::MpiSession mpi;
  const distributed::CommBackend backend = distributed::parse_backend(config.backend);
  std::unique_ptr<distributed::Communicator> world = distributed::make_communicator(mpi, {backend, 600});
  const bool on_device = backend == distributed::CommBackend::nccl;
  // One GPU per rank of this machine (the emulated backend has one device, shared).
  const Device device =
      on_device ? open_cuda_device(std::string(cuda_backend()) == "real" ? world->local_rank() : 0) : Device::cpu();
  const bool main_rank = world->rank() == 0;
  const int n = world->world_size();
  const double bus_factor = 2.0 * (n - 1) / n;
  if (main_rank) {
    std::printf(
        "all-reduce, f32 sum in place, %d processes on this machine, %s backend on %s; bus bandwidth = bytes / "
        "time x 2(N-1)/N\n",
        n, config.backend.c_str(), device_label(device).c_str());
    std::printf("%10s  %14s %12s  %14s %12s  %8s\n", "size", "strata (us)", "bus GB/s", "MPI_Allreduce", "bus GB/s",
                "ratio");
  }
  for (int64_t bytes = 1024; bytes <= config.max_bytes; bytes *= 4) {
    Tensor t = Tensor::ones({bytes / 4}, DType::f32, device);
    const double ours = time_per_call(*world, config.seconds, [&] {
      world->all_reduce_sum(t);
      if (on_device) device.context->synchronize();
    });
    std::vector<float> buffer(static_cast<size_t>(bytes / 4), 1.0f);
    const double reference = time_per_call(*world, config.seconds, [&] {
      MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    if (main_rank) {
      const double gb = static_cast<double>(bytes) / 1e9 * bus_factor;
      std::printf("%10s  %14.1f %12.3f  %14.1f %12.3f  %7.2fx\n", size_text(bytes).c_str(), ours * 1e6, gb / ours,
                  reference * 1e6, gb / reference, ours / reference);
    }
  }
  if (main_rank) {
    std::printf("ratio: strata's time / MPI_Allreduce's%s\n",
                on_device ? " (here NCCL on the device against MPI on host buffers: not the same transfer)"
                          : " (1.00x: no overhead over MPI itself)");
  }
  return 0;
}
#else
int run_bench_allreduce(const Args&) {
  throw Error("bench allreduce: this build of strata has no MPI (install Debian's libopenmpi-dev, then rebuild)");
}
#endif

}  // namespace strata::app

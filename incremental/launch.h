// How a training command (strata train, the per-setting binaries) runs as one process or as the
// ranks of a data-parallel world (incremental/trainer.h, "Data parallelism"):
//
//   mpirun -np 2 strata train ...    every process is a rank: MPI and the world communicator are made
//                                    here, the Trainer gets the world
//   strata train --nproc 2 ...       the command starts itself under `mpirun -np 2` (this machine)
//   strata train ...                 one process, no MPI at all
//
//   TrainingProcesses processes = start_training_processes(options, argv);  // may exec mpirun
//   Trainer trainer(options, stdout, processes.world.get());
//   ... on an error: processes.fail("strata train", error)                    // ends every rank
//
// Each rank opens the CUDA device of its local rank when --device cuda names none (cuda:<local rank>
// on a machine with several GPUs; the emulated backend has one device, which every rank then uses).
//
// Errors (strata::Error): --nproc > 1 without mpirun on the PATH (naming Debian's openmpi-bin), in a
// build without MPI, or --nproc given to a process already started by mpirun; the communicator's own
// (engine/distributed/communicator.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/distributed/communicator.h"
#include "incremental/trainer.h"

namespace strata::incremental {

struct TrainingProcesses {
  std::unique_ptr<distributed::MpiSession> mpi;
  std::unique_ptr<distributed::Communicator> world;  // null for one process

  // Prints `error` to stderr as "<command>: error: ..." (with the rank when there is a world) and,
  // with a world, stops every rank (MPI_Abort; never returns).
  void report_failure(const char* command, const std::exception& error) const;
};

// `command_line`: this process's argv, the program first. With options.nproc > 1 and no MPI launcher,
// replaces this process by mpirun running the same command line without --nproc (does not return).
// Under a launcher: initialises MPI, makes the world with --dist-backend and --dist-timeout and, for
// --device cuda without an index, sets options.device to the local rank's GPU.
TrainingProcesses start_training_processes(TrainOptions& options, const std::vector<std::string>& command_line);

// Replaces this process by `mpirun -np nproc` running `command_line` (the program first; its --nproc
// dropped; the program by its absolute path). Throws strata::Error when mpirun is not on the PATH.
[[noreturn]] void relaunch_under_mpirun(int nproc, const std::vector<std::string>& command_line);

}  // namespace strata::incremental

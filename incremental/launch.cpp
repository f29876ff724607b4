#include "incremental/launch.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace strata::incremental {

namespace {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string folders = path;
  size_t begin = 0;
  while (begin <= folders.size()) {
    const size_t end = std::min(folders.find(':', begin), folders.size());
    const std::filesystem::path candidate = std::filesystem::path(folders.substr(begin, end - begin)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    begin = end + 1;
  }
  return false;
}

// The command line without --nproc N (or --nproc=N).
std::vector<std::string> without_nproc(const std::vector<std::string>& command_line) {
  std::vector<std::string> out;
  for (size_t i = 0; i < command_line.size(); ++i) {
    if (command_line[i] == "--nproc") {
      ++i;
      continue;
    }
    if (command_line[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(command_line[i]);
  }
  return out;
}

}  // namespace

void relaunch_under_mpirun(int nproc, const std::vector<std::string>& command_line) {
  check(on_path("mpirun"), "--nproc ", nproc,
        ": mpirun is not on the PATH (install Debian's openmpi-bin), or start the processes with your MPI "
        "launcher: mpirun -np ",
        nproc, " ", command_line.front(), " ...");
  std::vector<std::string> words = {"mpirun", "-np", std::to_string(nproc), "--oversubscribe"};
  // Open MPI refuses to run as root unless told; containers often run as root.
  if (::geteuid() == 0) words.push_back("--allow-run-as-root");
  std::vector<std::string> rest = without_nproc(command_line);
  // The same program, by its absolute path (the ranks may start in another folder).
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) rest.front() = self.string();
  words.insert(words.end(), rest.begin(), rest.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execvp("mpirun", argv.data());
  throw Error(cat("--nproc ", nproc, ": cannot start mpirun: ", std::strerror(errno)));
}

void TrainingProcesses::report_failure(const char* command, const std::exception& error) const {
  if (!world) {
    std::fprintf(stderr, "%s: error: %s\n", command, error.what());
    return;
  }
  std::fprintf(stderr, "%s: rank %d of %d: error: %s\n", command, world->rank(), world->world_size(), error.what());
  std::fflush(stderr);
  distributed::MpiSession::abort_all(1);
}

TrainingProcesses start_training_processes(TrainOptions& options, const std::vector<std::string>& command_line) {
  TrainingProcesses processes;
  if (!distributed::launched_by_mpi()) {
    if (options.nproc > 1) relaunch_under_mpirun(options.nproc, command_line);
    return processes;
  }
  check(options.nproc <= 1, "--nproc ", options.nproc,
        ": this process was started by an MPI launcher already; give the number of processes to it (mpirun -np N)");
  processes.mpi = std::make_unique<distributed::MpiSession>();
  processes.world = distributed::make_communicator(
      *processes.mpi, {distributed::parse_backend(options.dist_backend), options.dist_timeout});
  const std::string device = options.device.empty() ? default_device_text() : options.device;
  if (device == "cuda" && std::string(cuda_backend()) == "real") {
    options.device = cat("cuda:", processes.world->local_rank());
  }
  return processes;
}

}  // namespace strata::incremental

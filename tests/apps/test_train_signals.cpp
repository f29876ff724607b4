// `strata train` under SIGTERM, run as a user runs it (the built tool in a child process on a small
// generated dataset): the signal after training has started ends the run after the current
// iteration with exit status 128 + 15, a message naming the signal and the checkpoint, and the
// command that resumes it; that command (run through the shell as printed) ends with the same
// weights, bit for bit, as a run never interrupted, and the next run removes temporary files left
// by killed processes (and only those).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "data/generate.h"
#include "engine/atomic_file.h"
#include "incremental/checkpoint.h"
#include "tests/data/temp_dir.h"
#include "tests/incremental/resume_check.h"

namespace fs = std::filesystem;
using namespace strata;

namespace {

constexpr const char* kOneThread = "OMP_NUM_THREADS=1";

// A child process whose stdout and stderr come back through one pipe. It runs with one OpenMP
// thread: on a loaded machine two spinning threads per process made an iteration ~20x slower, and
// every run of a test uses the same setting.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("OMP_NUM_THREADS=", 0) != 0) env.push_back(*e);
    }
    env.push_back(const_cast<char*>(kOneThread));
    env.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    if (out_ >= 0) ::close(out_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // The next line of output (without its newline); false at the end of the output.
  bool read_line(std::string& line) {
    for (;;) {
      const size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        output_ += line + "\n";
        return true;
      }
      char chunk[4096];
      const ssize_t n = ::read(out_, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        line = buffer_;
        output_ += buffer_;
        const bool any = !buffer_.empty();
        buffer_.clear();
        return any;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void signal(int signal) const { REQUIRE(::kill(pid_, signal) == 0); }
  // Reads the rest of the output, waits for the process and returns its wait status.
  int finish() {
    std::string line;
    while (read_line(line)) {
    }
    int status = 0;
    REQUIRE(::waitpid(pid_, &status, 0) == pid_);
    pid_ = -1;
    return status;
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
  std::string output_;
};

std::vector<std::string> train_command(const std::string& data, const std::string& output, const std::string& name) {
  return {STRATA_BINARY, "train", "--data-root", data,    "--output",    output, "--name",         name,
          "--step",      "0",     "--backbone",  "small", "--crop-size", "32",   "--batch-size",   "4",
          "--epochs",    "4",     "--lr",        "0.01",  "--workers",   "1",    "--log-interval", "1"};
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

std::string line_starting_with(const std::string& text, const std::string& prefix) {
  const size_t start = text.find("\n" + prefix);
  if (start == std::string::npos) return "";
  const size_t end = text.find('\n', start + 1);
  return text.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
}

}  // namespace

TEST_CASE("strata train stops on SIGTERM with a checkpoint, and the printed command resumes it bit-identically",
          "[cpu]") {
  test::TempDir dir("train_sigterm");
  data::GenerateOptions generate;
  generate.classes = 20;
  generate.train = 32;
  generate.val = 4;
  generate.size = 40;
  generate.threads = 1;
  data::generate_dataset(dir / "data", generate);
  const std::string runs = dir / "runs";

  Child full(train_command(dir / "data", runs, "full"));
  const int full_status = full.finish();
  INFO(full.output());
  REQUIRE(exit_code(full_status) == 0);

  Child run(train_command(dir / "data", runs, "split"));
  std::string line;
  while (run.read_line(line) && line.rfind("step 0 [", 0) != 0) {
  }
  REQUIRE(line.rfind("step 0 [", 0) == 0);  // the first iteration's progress line: training has started
  run.signal(SIGTERM);
  const int status = run.finish();
  INFO(run.output());
  REQUIRE(exit_code(status) == 128 + SIGTERM);
  const std::string checkpoint = runs + "/checkpoints/15-5-voc_split_0.safetensors";
  CHECK_THAT(run.output(), Catch::Contains("strata train: interrupted: step 0 stopped by SIGTERM after iteration ") &&
                               Catch::Contains("its checkpoint: " + checkpoint));
  REQUIRE(fs::exists(checkpoint));
  const incremental::Checkpoint stopped = incremental::load_checkpoint(checkpoint);
  CHECK_FALSE(stopped.info.complete);
  CHECK(stopped.info.iteration >= 1);
  CHECK(stopped.info.iteration < stopped.info.max_iterations());

  // Temporary files of a killed writer (a reaped child's pid) and of a live one (this process).
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(::waitpid(dead, nullptr, 0) == dead);
  const std::string stale = atomic_temp_path(checkpoint, dead);
  const std::string live = atomic_temp_path(checkpoint, ::getpid());
  for (const std::string& path : {stale, live}) write_file_atomically(path, std::string(4096, 'x'));

  // The printed command, with the tool's path for "strata", through the shell.
  const std::string resume = line_starting_with(run.output(), "resume with: strata train ");
  REQUIRE_FALSE(resume.empty());
  CHECK_THAT(resume, Catch::EndsWith("--step 0 --ckpt " + checkpoint));
  const std::string command = std::string(STRATA_BINARY) + resume.substr(std::string("resume with: strata").size());
  Child resumed({"/bin/sh", "-c", command});
  const int resumed_status = resumed.finish();
  INFO(resumed.output());
  REQUIRE(exit_code(resumed_status) == 0);
  CHECK_THAT(resumed.output(), Catch::Contains("removed " + stale + " (4.0 KiB, left by process " +
                                               std::to_string(dead) + ", which no longer runs)"));
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(incremental::load_checkpoint(checkpoint).info.complete);
  test::require_identical_tensors(runs + "/checkpoints/15-5-voc_full_0.safetensors", checkpoint);
}

// Durable atomic writes and the removal of stale temporary files (engine/atomic_file.h): the
// temporary file is flushed before the rename and the folder after it, interrupted and short
// writes are retried, a full disk is an error naming the file that leaves the previous content
// and no temporary file, and only the temporary files of processes that no longer run are removed.
//
// The engine is linked statically into this suite, so its calls to fsync and write land in the
// definitions below, which forward to the kernel: fsync records which file it flushed; write, when
// a test asks, splits writes to a temporary file into pieces of at most 7 bytes and fails every
// other call with EINTR.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/atomic_file.h"
#include "tests/data/temp_dir.h"

namespace fs = std::filesystem;
using namespace strata;

namespace {

struct Interposed {
  bool record_fsync = false;
  std::vector<std::string> flushed;  // what fsync flushed, in order
  bool faulty_writes = false;
  int write_calls = 0;
};

Interposed& interposed() {
  static Interposed state;
  return state;
}

std::string fd_path(int fd) {
  char link[PATH_MAX];
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(proc.c_str(), link, sizeof(link) - 1);
  return n < 0 ? std::string() : std::string(link, static_cast<size_t>(n));
}

bool is_temp_file(int fd) {
  const std::string path = fd_path(fd);
  return path.find(".tmp." + std::to_string(::getpid())) != std::string::npos;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A pid that no process has: a child that exited and was reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return child;
}

}  // namespace

extern "C" int fsync(int fd) {
  if (interposed().record_fsync) interposed().flushed.push_back(fd_path(fd));
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" ssize_t write(int fd, const void* data, size_t bytes) {
  Interposed& state = interposed();
  if (state.faulty_writes && is_temp_file(fd)) {
    if (state.write_calls++ % 2 == 0) {
      errno = EINTR;
      return -1;
    }
    bytes = std::min<size_t>(bytes, 7);
  }
  return ::syscall(SYS_write, fd, data, bytes);
}

TEST_CASE("an atomic write flushes its temporary file before the rename and the folder after it", "[cpu]") {
  test::TempDir dir("atomic_fsync");
  const fs::path folder = fs::canonical(dir.path());
  const fs::path path = folder / "results.csv";
  interposed().flushed.clear();
  interposed().record_fsync = true;
  write_file_atomically(path.string(), "step,mIoU\n0,0.5\n");
  interposed().record_fsync = false;
  // The file is flushed under its temporary name (before the rename), then the folder.
  const std::vector<std::string> expected = {atomic_temp_path(path.string(), ::getpid()), folder.string()};
  CHECK(interposed().flushed == expected);
  CHECK(read_text(path) == "step,mIoU\n0,0.5\n");
  CHECK(fs::directory_iterator(folder)->path() == path);  // the only file: no temporary left
}

TEST_CASE("an atomic write retries interrupted and short writes", "[cpu]") {
  test::TempDir dir("atomic_short_writes");
  const fs::path path = dir.path() / "state.bin";
  std::string bytes(1000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 % 251);
  interposed().write_calls = 0;
  interposed().faulty_writes = true;
  write_file_atomically(path.string(), bytes);
  interposed().faulty_writes = false;
  CHECK(interposed().write_calls >= 2 * 1000 / 7);  // every 7-byte piece came after an EINTR
  CHECK(read_text(path) == bytes);
}

TEST_CASE("an atomic write to a full disk names the file, keeps the old content and leaves no temporary file",
          "[cpu]") {
  test::TempDir dir("atomic_disk_full");
  const fs::path path = dir.path() / "model.safetensors";
  write_text(path, "the previous checkpoint");
  // The temporary file's name leads to /dev/full, where every write fails with ENOSPC.
  const fs::path temp = atomic_temp_path(path.string(), ::getpid());
  fs::create_symlink("/dev/full", temp);
  CHECK_THROWS_WITH(write_file_atomically(path.string(), std::string(100000, 'x')),
                    Catch::Contains("error writing '" + temp.string() + "' (for '" + path.string() + "')") &&
                        Catch::Contains("disk full?"));
  CHECK_FALSE(fs::exists(fs::symlink_status(temp)));
  CHECK(read_text(path) == "the previous checkpoint");

  CHECK_THROWS_WITH(write_file_atomically((dir.path() / "missing" / "x.json").string(), "{}"),
                    Catch::Contains("cannot create") && Catch::Contains("missing/x.json"));
}

TEST_CASE("stale temporary files of processes that no longer run are removed, a live process's are kept", "[cpu]") {
  test::TempDir dir("atomic_stale");
  const long dead = dead_pid();
  const std::string ckpt = (dir.path() / "15-5-voc_MiB_0.safetensors").string();
  const std::string stale = atomic_temp_path(ckpt, dead);
  const std::string live = atomic_temp_path(ckpt, ::getpid());
  const std::string init = atomic_temp_path((dir.path() / "cache.json").string(), 1);
  write_text(stale, std::string(1234, 's'));
  write_text(live, "being written");
  write_text(init, "pid 1 always runs");
  // Not "<name>.tmp.<pid>" of a dead process, or not a regular file: untouched.
  const std::vector<std::string> others = {ckpt,
                                           (dir.path() / "a.tmp").string(),
                                           (dir.path() / "a.tmp.").string(),
                                           (dir.path() / ("a.tmp." + std::to_string(dead) + "x")).string(),
                                           (dir.path() / (".tmp." + std::to_string(dead))).string(),
                                           (dir.path() / "a.tmp.99999999999").string()};
  for (const std::string& path : others) write_text(path, "keep");
  const fs::path folder_like = dir.path() / ("runs.tmp." + std::to_string(dead));
  fs::create_directories(folder_like / "inner");
  const fs::path nested = folder_like / ("x.tmp." + std::to_string(dead));
  write_text(nested, "not in the folder itself");

  const std::vector<StaleTempFile> removed = remove_stale_temp_files(dir.str());
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].path == stale);
  CHECK(removed[0].pid == dead);
  CHECK(removed[0].bytes == 1234);
  CHECK(removed[0].error.empty());
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(init));
  for (const std::string& path : others) CHECK(fs::exists(path));
  CHECK(fs::is_directory(folder_like));
  CHECK(fs::exists(nested));

  CHECK(remove_stale_temp_files((dir.path() / "no_such_folder").string()).empty());
  CHECK_THROWS_WITH(remove_stale_temp_files(ckpt), Catch::Contains(ckpt));
}

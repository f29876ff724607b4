#include "engine/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <system_error>

#include "engine/error.h"

namespace strata {

namespace {

namespace fs = std::filesystem;

std::string describe_errno(int error) {
  const std::string text = std::error_code(error, std::generic_category()).message();
  return error == ENOSPC || error == EDQUOT ? text + " (disk full?)" : text;
}

// Writes all of `bytes` to `fd`; returns 0 or the errno of the failed write.
int write_all(int fd, const std::string& bytes) {
  // Linux writes at most 0x7ffff000 bytes per call; larger requests come back short anyway.
  constexpr size_t kChunk = size_t{1} << 30;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, std::min(kChunk, bytes.size() - done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    // A regular file never takes nothing without an error; do not spin on it.
    if (n == 0) return ENOSPC;
    done += static_cast<size_t>(n);
  }
  return 0;
}

int fsync_retrying(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// Flushes the folder holding `path`, so a rename into it survives a power cut.
void sync_folder_of(const std::string& path) {
  fs::path folder = fs::path(path).parent_path();
  if (folder.empty()) folder = ".";
  int fd = -1;
  do {
    fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw Error(cat("wrote '", path, "' but cannot open its folder '", folder.string(),
                    "' to flush it: ", describe_errno(errno)));
  }
  const int error = fsync_retrying(fd);
  ::close(fd);
  // EINVAL: a file system that cannot flush folders (it keeps no separate folder state to flush).
  if (error != 0 && error != EINVAL) {
    throw Error(cat("wrote '", path, "' but cannot flush its folder '", folder.string(), "': ", describe_errno(error)));
  }
}

// "<name>.tmp.<pid>" with a non-empty name and a positive decimal pid: the pid, else 0.
long temp_file_pid(const std::string& file_name) {
  const size_t marker = file_name.rfind(".tmp.");
  if (marker == std::string::npos || marker == 0) return 0;
  const std::string digits = file_name.substr(marker + 5);
  if (digits.empty() || digits.size() > 10) return 0;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return 0;
  const long long pid = std::stoll(digits);
  return pid > 0 && pid <= INT_MAX ? static_cast<long>(pid) : 0;
}

// Only ESRCH says the process does not exist; EPERM is a live process of another user.
bool process_exists(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH; }

}  // namespace

std::string atomic_temp_path(const std::string& path, long pid) { return path + ".tmp." + std::to_string(pid); }

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = atomic_temp_path(path, ::getpid());
  auto fail = [&](const std::string& what, int error) {
    ::unlink(tmp.c_str());
    return Error(cat(what, " '", tmp, "' (for '", path, "'): ", describe_errno(error)));
  };
  int fd = -1;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int error = errno;
    throw Error(cat("cannot create '", tmp, "' (for '", path, "'): ", describe_errno(error)));
  }
  int error = write_all(fd, bytes);
  if (error != 0) {
    ::close(fd);
    throw fail("error writing", error);
  }
  error = fsync_retrying(fd);
  if (error != 0) {
    ::close(fd);
    throw fail("error flushing", error);
  }
  // Linux releases the descriptor even when close reports EINTR: only other errors are failures.
  if (::close(fd) != 0 && errno != EINTR) throw fail("error closing", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    ::unlink(tmp.c_str());
    throw Error(cat("cannot rename '", tmp, "' to '", path, "': ", describe_errno(rename_error)));
  }
  sync_folder_of(path);
}

std::vector<StaleTempFile> remove_stale_temp_files(const std::string& folder) {
  std::vector<StaleTempFile> removed;
  std::error_code error;
  fs::directory_iterator it(folder, error);
  if (error == std::errc::no_such_file_or_directory) return removed;
  check(!error, "cannot list the folder '", folder, "' to remove stale temporary files: ", error.message());
  for (; it != fs::directory_iterator(); it.increment(error)) {
    const long pid = temp_file_pid(it->path().filename().string());
    if (pid == 0 || process_exists(pid)) continue;
    std::error_code status_error;
    if (!fs::is_regular_file(it->symlink_status(status_error)) || status_error) continue;
    StaleTempFile file;
    file.path = it->path().string();
    file.pid = pid;
    file.bytes = it->file_size(status_error);
    if (status_error) file.bytes = 0;
    std::error_code remove_error;
    fs::remove(it->path(), remove_error);
    if (remove_error) file.error = remove_error.message();
    removed.push_back(std::move(file));
  }
  check(!error, "cannot list the folder '", folder, "' to remove stale temporary files: ", error.message());
  return removed;
}

}  // namespace strata

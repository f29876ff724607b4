// Files that must survive a crash (checkpoints, results, caches): written whole or not at all.
//
// write_file_atomically(path, bytes) writes `bytes` to the temporary file "<path>.tmp.<pid>" in the
// destination's folder (POSIX write, retried on EINTR and short writes), flushes it to the disk
// (fsync), closes it, renames it over `path` and flushes the folder (fsync of the folder, so the
// rename itself survives a power cut). After a kill at any moment, or a power cut, `path` holds its
// previous content or the new one, never a part of it.
//
// A process killed before its rename leaves its temporary file behind (a whole checkpoint: 0.5 GB
// at ResNet-101). remove_stale_temp_files(folder) removes those whose process no longer runs; a
// live process's temporary file is never touched, so a run cleaning a folder another run writes
// into is safe. (Processes are told apart by pid: a writer in another pid namespace sharing the
// folder looks dead.)
//
// Errors (strata::Error naming the destination and the temporary file): the temporary file cannot be
// created, written ("disk full?" when the device or quota has no space left), flushed, closed or
// renamed (the temporary file is removed then, and `path` is untouched); the folder cannot be
// flushed (the new `path` is in place then, but its durability is not guaranteed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

void write_file_atomically(const std::string& path, const std::string& bytes);

// The temporary file that process `pid` writes `path` through: "<path>.tmp.<pid>".
std::string atomic_temp_path(const std::string& path, long pid);

struct StaleTempFile {
  std::string path;
  long pid = 0;  // the process that wrote it, which no longer runs
  std::uintmax_t bytes = 0;
  std::string error;  // empty: removed; else why it could not be removed (it is still there)
};

// Every regular file directly in `folder` named "<name>.tmp.<pid>" (name not empty, pid decimal)
// whose process does not exist (kill(pid, 0) fails with ESRCH) is removed and returned; a file of a
// live process (kill succeeds, or fails with EPERM: another user's) and every other file are left
// alone. A folder that does not exist holds none. Throws naming `folder` when it cannot be read.
std::vector<StaleTempFile> remove_stale_temp_files(const std::string& folder);

}  // namespace strata

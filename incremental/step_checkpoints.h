// A step's checkpoint policy, apart from its training loop (SPEC-continual.md §8.2; the file format
// and its checks are incremental/checkpoint.h):
//
//   CheckpointPolicy      when a step saves and stops: a checkpoint at the end of every epoch, every
//                         --ckpt-interval iterations when > 0, and at --stop-after, where the step
//                         stops; the complete one after the step's last iteration
//   StepCheckpointWriter  what a save writes: the session's model, momentum buffers and method state
//                         with the step's metadata at that position (atomically), and the JSONL
//                         "checkpoint" record; a model or momentum holding NaN or Inf is never
//                         written (the file keeps the last good checkpoint), and the save stops the
//                         run naming the tensor, the iteration and the last good checkpoint
//   load_previous_step    the step t-1 checkpoint a step t >= 1 starts from, checked for that use
//   resume_step           --ckpt: a checkpoint of this step, checked for resuming, restored into the
//                         session; the iteration to continue from
//
// Errors (strata::Error naming the file and what differs): a non-finite tensor at a save; a missing
// previous-step checkpoint
// (saying how to make it), an incomplete one, or one of another run (check_checkpoint); a resumed
// checkpoint of another task, method, schedule or architecture; a file that cannot be written.
#pragma once

#include <cstdint>
#include <string>

#include "incremental/checkpoint.h"
#include "incremental/report.h"
#include "incremental/step_session.h"

namespace strata::incremental {

struct CheckpointPolicy {
  int64_t iterations_per_epoch = 1;
  int64_t max_iterations = 0;
  int64_t interval = 0;    // --ckpt-interval: iterations between mid-step checkpoints (0: epoch ends only)
  int64_t stop_after = 0;  // --stop-after: stop the step after this many of its iterations (0: never)

  // After `iteration` iterations of the step (counted from its start): whether the step stops
  // there (never after its last iteration, which completes it).
  bool stops_at(int64_t iteration) const;
  // Whether a mid-step (incomplete) checkpoint is written after `iteration`: an epoch end, an
  // interval, or the stop; never after the last iteration (the complete one is written then).
  bool saves_at(int64_t iteration) const;
};

class StepCheckpointWriter {
 public:
  // `info`: the step's metadata (schedule fields set); its position fields are set at each save.
  // `resumed_from`: the checkpoint the step resumed from (--ckpt), "" when it started afresh.
  StepCheckpointWriter(std::string path, CheckpointInfo info, const JsonlLog& log, const std::string& resumed_from = "",
                       int64_t resumed_iteration = 0);

  // Writes `session` after `iteration` iterations (complete: the step's last) to path() atomically,
  // and its "checkpoint" log record. Throws, writing nothing, when a tensor is not finite.
  void save(StepSession& session, int64_t iteration, bool complete);
  const std::string& path() const { return path_; }
  // For messages: "<path> (iteration N)" of the last save or the resumed checkpoint, or that the
  // step has none yet.
  const std::string& last_good() const { return last_good_; }

 private:
  std::string path_;
  CheckpointInfo info_;
  const JsonlLog& log_;
  std::string last_good_;
};

// The checkpoint of step `expected.step` at `path` (given with --step-ckpt, or the run's own) that
// the next step starts from; `task_name` and `step` (the step being prepared) name them in messages.
Checkpoint load_previous_step(const std::string& path, const CheckpointInfo& expected, const std::string& task_name,
                              int step, NonFiniteTensors nonfinite);

// Restores `session` from the checkpoint `path` of this step (`expected`: the step's metadata) and
// returns the number of iterations it had completed. A checkpoint written by another number of
// data-parallel ranks (CheckpointInfo::ranks) resumes from an epoch's end only, at the same epoch's end
// in this run's iterations per epoch.
int64_t resume_step(StepSession& session, const std::string& path, const CheckpointInfo& expected,
                    NonFiniteTensors nonfinite);

}  // namespace strata::incremental

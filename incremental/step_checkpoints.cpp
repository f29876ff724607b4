#include "incremental/step_checkpoints.h"

#include <filesystem>
#include <utility>

namespace strata::incremental {

bool CheckpointPolicy::stops_at(int64_t iteration) const {
  return iteration < max_iterations && stop_after > 0 && iteration >= stop_after;
}

bool CheckpointPolicy::saves_at(int64_t iteration) const {
  if (iteration >= max_iterations) return false;
  const bool interval_reached = interval > 0 && iteration % interval == 0;
  const bool epoch_end = iteration % iterations_per_epoch == 0;
  return stops_at(iteration) || interval_reached || epoch_end;
}

StepCheckpointWriter::StepCheckpointWriter(std::string path, CheckpointInfo info, const JsonlLog& log,
                                           const std::string& resumed_from, int64_t resumed_iteration)
    : path_(std::move(path)), info_(std::move(info)), log_(log) {
  last_good_ = resumed_from.empty() ? std::string("none of this step yet")
                                    : cat(resumed_from, " (iteration ", resumed_iteration, ", resumed from)");
}

void StepCheckpointWriter::save(StepSession& session, int64_t iteration, bool complete) {
  info_.epoch = iteration / info_.iterations_per_epoch;
  info_.iteration = iteration;
  info_.complete = complete;
  try {
    save_checkpoint(path_, info_, session.model(), &session.optimizer(), session.method().state());
  } catch (const NonFiniteCheckpoint& e) {
    throw Error(cat("step ", info_.step, ", iteration ", iteration, ": the training diverged: '", e.tensor(),
                    "' holds a non-finite value (NaN or Inf), so its checkpoint is not written (a lower --lr may "
                    "help); last good checkpoint: ",
                    last_good_));
  }
  last_good_ = cat(path_, " (iteration ", iteration, ")");
  log_.write(json::Object{{"event", "checkpoint"},
                          {"step", info_.step},
                          {"epoch", info_.epoch},
                          {"iteration", iteration},
                          {"complete", complete},
                          {"path", path_}});
}

Checkpoint load_previous_step(const std::string& path, const CheckpointInfo& expected, const std::string& task_name,
                              int step, NonFiniteTensors nonfinite) {
  check(std::filesystem::exists(path), "step ", step, " of task ", task_name, " needs the checkpoint of ", "step ",
        step - 1, ", ", path, ", which does not exist: train step ", step - 1,
        " first (same --output and --name) or give its file with --step-ckpt");
  Checkpoint previous = load_checkpoint(path, nonfinite);
  check_checkpoint(previous, expected, CheckpointUse::previous_step);
  return previous;
}

int64_t resume_step(StepSession& session, const std::string& path, const CheckpointInfo& expected,
                    NonFiniteTensors nonfinite) {
  Checkpoint resume = load_checkpoint(path, nonfinite);
  check_checkpoint(resume, expected, CheckpointUse::resume);
  session.restore(resume);
  if (resume.info.ranks == expected.ranks) return resume.info.iteration;
  // Written by another number of ranks at an epoch's end (check_checkpoint): the same epoch's end in
  // this run's iterations, where the poly schedule has the same lr.
  const int64_t iteration = resume.info.iteration / resume.info.iterations_per_epoch * expected.iterations_per_epoch;
  session.schedule().set_iteration(iteration);
  return iteration;
}

}  // namespace strata::incremental

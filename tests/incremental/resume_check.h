// The --ckpt resume check, written once for the CPU suite (tests/incremental/test_trainer.cpp) and
// the CUDA suite (tests/cuda/test_trainer_on_cuda.cpp): from one step-0 checkpoint, step 1 with MiB
// (teacher, balanced init, unbiased losses), or another method, for two epochs, uninterrupted; then the same step
// stopped inside epoch 0 and inside epoch 1, resumed each time from its checkpoint (the loader
// restarting mid-epoch, behind the device prefetcher on CUDA). Model, momentum buffers, schedule
// position and test scores must be the same bits.
#pragma once

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>

#include "engine/safetensors.h"
#include "incremental/checkpoint.h"
#include "incremental/trainer.h"

namespace strata::test {

// Every tensor of two safetensors files, byte for byte (and the same names).
inline void require_identical_tensors(const std::string& a, const std::string& b) {
  SafetensorsFile fa = load_safetensors(a, Layout::as_stored), fb = load_safetensors(b, Layout::as_stored);
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  for (const auto& [name, ta] : fa.tensors) {
    INFO(name);
    REQUIRE(fb.tensors.count(name) == 1);
    const Tensor& tb = fb.tensors.at(name);
    REQUIRE(ta.shape() == tb.shape());
    REQUIRE(ta.dtype() == tb.dtype());
    REQUIRE(std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) == 0);
  }
}

// `options(name)`: the options of a short run named `name` (data, output, device, small model);
// its step 0 is trained here first. `method`: step 1's (MiB by default); with `method_at_step0` step
// 0 is trained with it too (EWC/PI/RW: the importance step 1 penalises with), and the resumed step's
// method state (their accumulators) must come out the same bits as well. `step1` (when set) changes
// step 1's options after the rest (replay: --replay-images, which step 0 refuses).
inline void check_resume_is_bit_identical(const std::function<incremental::TrainOptions(const std::string&)>& options,
                                          const std::string& method = "MiB", bool method_at_step0 = false,
                                          const std::function<void(incremental::TrainOptions&)>& step1_options = {}) {
  using incremental::Checkpoint;
  using incremental::load_checkpoint;
  using incremental::StepResult;
  using incremental::Trainer;
  using incremental::TrainOptions;
  TrainOptions base_options = options("base");
  if (method_at_step0) base_options.method = method;
  const StepResult base = Trainer(base_options, nullptr).run_step(0);
  auto step1 = [&](const std::string& name) {
    TrainOptions o = options(name);
    o.method = method;
    o.step = 1;
    o.epochs = {2};
    o.step_ckpt = base.checkpoint;
    if (step1_options) step1_options(o);
    return o;
  };
  const StepResult full = Trainer(step1("full"), nullptr).run_step(1);
  REQUIRE(full.iterations >= 4);
  const int64_t per_epoch = full.iterations / 2;

  TrainOptions first = step1("split");
  first.stop_after = 1;
  const StepResult stopped = Trainer(first, nullptr).run_step(1);
  REQUIRE(stopped.stopped);
  REQUIRE(stopped.iterations == 1);
  const Checkpoint mid = load_checkpoint(stopped.checkpoint);
  CHECK_FALSE(mid.info.complete);
  CHECK(mid.info.iteration == 1);
  CHECK(mid.info.epoch == 0);

  TrainOptions second = step1("split");
  second.ckpt = stopped.checkpoint;
  second.stop_after = per_epoch + 1;
  const StepResult stopped_again = Trainer(second, nullptr).run_step(1);
  REQUIRE(stopped_again.stopped);
  CHECK(stopped_again.iterations == per_epoch);
  CHECK(load_checkpoint(stopped_again.checkpoint).info.epoch == 1);

  TrainOptions last = step1("split");
  last.ckpt = stopped_again.checkpoint;
  const StepResult resumed = Trainer(last, nullptr).run_step(1);
  CHECK(resumed.iterations == full.iterations - per_epoch - 1);
  CHECK(load_checkpoint(resumed.checkpoint).info.complete);

  require_identical_tensors(full.checkpoint, resumed.checkpoint);
  CHECK(resumed.scores.iou == full.scores.iou);
  const Checkpoint a = load_checkpoint(full.checkpoint), b = load_checkpoint(resumed.checkpoint);
  CHECK(a.optimizer_metadata == b.optimizer_metadata);
  CHECK(a.info.iteration == b.info.iteration);
}

}  // namespace strata::test

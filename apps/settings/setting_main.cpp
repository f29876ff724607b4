// One standalone training binary per class-incremental setting (dataset, task, protocol, method),
// built by apps/CMakeLists.txt's strata_setting() with the setting linked in (setting.h), e.g.
// strata_voc_15-5_ov_mib. It runs every step of the setting in order with the references' recipe
// (SPEC-continual.md §4.5: MiB/PLOP's DeepLabV3-ResNet-101, MiB head, In-place ABN, output stride
// 16; lr 0.01 then 0.001, 30 epochs per step on VOC and 60 on ADE20K, batch 24, crop 512) and the
// method's preset (incremental/method.h), then prints old/new/all mean IoU after every step.
//
// Only where the data is and how the run is kept can be changed (--data-root, --output, --device,
// --weights, --workers, --seed, --name, --step, --ckpt, --step-ckpt, intervals), and a step >= 1 may
// replay an image set (--replay-images, --replay-ratio: the DeepInversion studies run a setting so);
// everything else that decides the numbers is the setting's. `strata train` takes every option for other experiments.
// SIGINT or SIGTERM stops a step as in `strata train` (exit status 128 + the signal's number, with the resume command).
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "apps/settings/setting.h"
#include "engine/error.h"
#include "engine/interrupt.h"
#include "incremental/launch.h"
#include "incremental/options.h"
#include "incremental/trainer.h"

namespace {

const std::vector<std::string> kAdjustable = {"--data-root",
                                              "--output",
                                              "--device",
                                              "--weights",
                                              "--workers",
                                              "--seed",
                                              "--name",
                                              "--step",
                                              "--ckpt",
                                              "--step-ckpt",
                                              "--ckpt-interval",
                                              "--val-interval",
                                              "--log-interval",
                                              "--replay-images",
                                              "--deepinversion-images",
                                              "--deepinversion_images",
                                              "--replay-ratio",
                                              "--nproc",
                                              "--dist-backend",
                                              "--dist-timeout"};

strata::incremental::TrainOptions setting_options() {
  strata::incremental::TrainOptions o;
  const strata::app::Setting& s = strata::app::kSetting;
  o.dataset = s.dataset;
  o.task = s.task;
  o.protocol = s.overlapped ? strata::incremental::Protocol::overlapped : strata::incremental::Protocol::disjoint;
  o.method = s.method;
  o.all_steps = true;
  o.name = s.method;
  std::istringstream fixed(s.fixed_options);
  std::vector<std::string> args;
  for (std::string word; fixed >> word;) args.push_back(word);
  strata::incremental::parse_train_options(args, o, {});
  return o;
}

void print_usage(const char* program, const strata::incremental::TrainOptions& o) {
  std::printf(
      "usage: %s --data-root DIR [options]\n"
      "\n"
      "Runs every step of one class-incremental setting with the references' recipe and prints old/new/all mean\n"
      "IoU after each step (old = the classes of step 0, new = those added later; MiB's Table 1/2 columns are the\n"
      "'background excluded' ones).\n"
      "\n"
      "setting: dataset %s, task %s, %s protocol, method %s%s%s\n"
      "model:   %s (use --weights for the ImageNet\n"
      "         backbone, converted by tools/convert_weights.py, as the papers do)\n"
      "recipe:  the references' (SGD Nesterov 0.9, weight decay 1e-4, poly 0.9; lr 0.01 at step 0 and 0.001\n"
      "         after; 30 epochs per step on VOC, 60 on ADE20K; batch 24; crop 512 unless the setting fixes another)\n"
      "\n"
      "Here --step defaults to all and --name to the method. For other recipes or models use `strata train`,\n"
      "which takes every option.\n"
      "\n"
      "options:\n",
      program, o.dataset.c_str(), o.task.c_str(), strata::incremental::protocol_name(o.protocol), o.method.c_str(),
      *strata::app::kSetting.fixed_options ? " with " : "", strata::app::kSetting.fixed_options,
      strata::app::kSetting.model_text);
  std::fputs(strata::incremental::train_options_help(kAdjustable).c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const char* program = strata::app::kSetting.binary;
  try {
    strata::incremental::TrainOptions options = setting_options();
    if (!strata::incremental::parse_train_options(std::vector<std::string>(argv + 1, argv + argc), options,
                                                  kAdjustable)) {
      print_usage(program, options);
      return 0;
    }
    strata::check(!options.data_root.empty(), "--data-root is required: the dataset's folder (see --help)");
    // Under mpirun (or with --nproc, which starts it) every process is a rank of a data-parallel run.
    strata::incremental::TrainingProcesses processes =
        strata::incremental::start_training_processes(options, std::vector<std::string>(argv, argv + argc));
    const bool main_rank = !processes.world || processes.world->rank() == 0;
    try {
      // SIGINT / SIGTERM: the step stops after its current iteration with a checkpoint; a second one
      // ends the process at once.
      strata::StopOnSignals signals;
      strata::incremental::Trainer trainer(options, stdout, processes.world.get());
      trainer.stop_when(signals.flag());
      try {
        const std::vector<strata::incremental::StepResult> results = trainer.run();
        if (main_rank) std::printf("\n%s\n", strata::incremental::format_steps_table(trainer.task(), results).c_str());
      } catch (const strata::Interrupted& e) {
        const std::vector<std::string> args(argv + 1, argv + argc);
        if (main_rank) {
          std::fprintf(
              stderr, "%s: interrupted: %s\n%s", program, e.what(),
              strata::incremental::resume_hint(program, args, options, e, trainer.task().num_steps() - 1).c_str());
        }
        return 128 + e.signal();
      }
    } catch (const std::exception& e) {
      if (!processes.world) throw;
      processes.report_failure(program, e);  // ends every rank
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  }
}

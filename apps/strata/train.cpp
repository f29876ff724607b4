// `strata train`: trains the steps of a class-incremental setting with MiB-style options
// (incremental/options.h lists them; `strata train --help` explains each). Every step writes its
// checkpoint, log records and results row (incremental/trainer.h). SIGINT or SIGTERM stops the run
// after the current iteration with a checkpoint and prints the command that resumes it; the exit
// status is then 128 + the signal's number.
#include <cstdio>
#include <string>

#include "apps/strata/commands.h"
#include "engine/interrupt.h"
#include "incremental/launch.h"
#include "incremental/options.h"
#include "incremental/trainer.h"

namespace strata::app {

namespace {

const char* kTrainUsage =
    "usage: strata train --data-root DIR [--dataset voc] [--task 15-5] [--step N|all]\n"
    "                    [--method FT|LwF|LwF-MC|ILT|EWC|PI|RW|MiB|PLOP] [--overlap] [options]\n"
    "\n"
    "Trains one or all steps of a class-incremental segmentation task, as MiB's run.py: step t builds the model\n"
    "with the classes of steps 0..t, loads step t-1's checkpoint (this run's, or --step-ckpt), applies the\n"
    "method's initialisation, trains with SGD (Nesterov 0.9, weight decay 1e-4, poly 0.9 per iteration) and the\n"
    "method's losses against the frozen step t-1 model, writes the step checkpoint, evaluates the step's test set\n"
    "and prints per-class IoU, old/new/all mIoU with and without background, and the accuracies. Unset recipe\n"
    "options take the references' values for the dataset, task and step.\n"
    "\n"
    "examples:\n"
    "  strata make-dataset --out data/generated\n"
    "  strata train --data-root data/generated --task 15-5 --overlap --step all --method MiB --backbone small \\\n"
    "               --crop-size 64 --batch-size 8 --epochs 4 --lr 0.05,0.005\n"
    "  strata train --data-root data/PascalVOC12 --task 15-1 --overlap --step 1 --method MiB --name mib\n"
    "\n"
    "options, grouped by what they configure (a method's flags name the method and the code they follow):\n"
    "\n";

}  // namespace

int run_train(const Args& args) {
  incremental::TrainOptions options;
  if (!incremental::parse_train_options(args, options)) {
    std::fputs(kTrainUsage, stdout);
    std::fputs(incremental::train_options_help().c_str(), stdout);
    return 0;
  }
  // Under mpirun (or with --nproc, which starts it) every process is a rank of a data-parallel run.
  std::vector<std::string> command_line = {"strata", "train"};
  command_line.insert(command_line.end(), args.begin(), args.end());
  incremental::TrainingProcesses processes = incremental::start_training_processes(options, command_line);
  const bool main_rank = !processes.world || processes.world->rank() == 0;
  try {
    // SIGINT / SIGTERM: the step stops after its current iteration with a checkpoint; a second one ends
    // the process at once.
    StopOnSignals signals;
    incremental::Trainer trainer(options, stdout, processes.world.get());
    trainer.stop_when(signals.flag());
    try {
      trainer.run();
    } catch (const Interrupted& e) {
      if (main_rank) {
        std::fprintf(
            stderr, "strata train: interrupted: %s\n%s", e.what(),
            incremental::resume_hint("strata train", args, options, e, trainer.task().num_steps() - 1).c_str());
      }
      return 128 + e.signal();
    }
  } catch (const std::exception& e) {
    if (!processes.world) throw;
    processes.report_failure("strata train", e);  // ends every rank
  }
  return 0;
}

}  // namespace strata::app

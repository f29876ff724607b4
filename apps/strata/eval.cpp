// `strata eval`: evaluates a step checkpoint on its test set. The checkpoint's metadata gives the
// dataset kind, task, step, architecture, convention and crop size (incremental/checkpoint.h); the
// options below may change the convention and how the images are evaluated. Prints the per-class
// table, old/new/all mIoU with and without background and the accuracies, and writes the step's
// row of the run's results CSV.
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/strata/commands.h"
#include "engine/command_line.h"
#include "incremental/checkpoint.h"
#include "incremental/options.h"
#include "incremental/trainer.h"

namespace strata::app {

namespace {

const char* kEvalUsage =
    "usage: strata eval --ckpt FILE --data-root DIR [options]\n"
    "\n"
    "Evaluates a step checkpoint (written by strata train) on the test set of its step (SPEC §2.5: the test\n"
    "images containing a class seen by the step, labels through the convention's test table), with the\n"
    "architecture, task and step read from the checkpoint. Results go to <output>/results/<task>-<dataset>_<name>.csv\n"
    "(default: the run folder and name the checkpoint's path and file name give). --save-predictions DIR draws\n"
    "every test image as DIR/step<k>/<image>.png: image | ground truth | prediction | the previous step's\n"
    "prediction (when its checkpoint is next to this one), in the dataset's colours, with a legend.\n"
    "\n"
    "options:\n"
    "  --ckpt FILE               the step checkpoint to evaluate (required)\n"
    "  --crop-size N             test resize/crop size, >= 16 (default: the checkpoint's training crop)\n";

const std::vector<std::string> kEvalOptions = {
    "--ckpt",      "--data-root", "--convention",  "--test-split",       "--eval-full-image", "--eval-batch-size",
    "--crop-size", "--device",    "--precision",   "--save-predictions", "--overlay",         "--workers",
    "--output",    "--name",      "--no-progress", "--no-tables",        "--skip-bad",        "--allow-nonfinite"};
// The options whose help is train's; --ckpt and --crop-size mean something else here (kEvalUsage).
const std::vector<std::string> kEvalTrainHelp = {
    "--data-root",   "--convention",       "--test-split", "--eval-full-image", "--eval-batch-size", "--device",
    "--precision",   "--save-predictions", "--overlay",    "--workers",         "--output",          "--name",
    "--no-progress", "--no-tables",        "--skip-bad",   "--allow-nonfinite"};

// The run folder and name of "<output>/checkpoints/<task>-<dataset>_<name>_<step>.safetensors".
void run_of(const std::string& path, const incremental::CheckpointInfo& info, const std::string& dataset,
            std::string& output, std::string& name) {
  const std::filesystem::path p(path);
  const std::filesystem::path run = p.parent_path().parent_path();
  output = (run.empty() ? std::filesystem::path(".") : run).string();
  const std::string file = p.filename().string();
  const std::string tail = cat("_", info.step, ".safetensors");
  // "<task>-<dataset>" as the trainer names files: the name of an empty run name minus "_" + tail.
  const std::string probe = incremental::checkpoint_file_name(info.task, dataset, "", info.step);
  const std::string head = probe.substr(0, probe.size() - tail.size() - 1);
  name = "eval";
  if (file.size() > head.size() + 1 + tail.size() && file.rfind(cat(head, "_"), 0) == 0 &&
      file.compare(file.size() - tail.size(), tail.size(), tail) == 0) {
    name = file.substr(head.size() + 1, file.size() - head.size() - 1 - tail.size());
  }
}

}  // namespace

int run_eval(const Args& args) {
  // The checkpoint gives the defaults the other options change: read its name first.
  incremental::TrainOptions given;
  if (!incremental::parse_train_options(args, given, kEvalOptions)) {
    std::fputs(kEvalUsage, stdout);
    std::fputs(incremental::train_options_help(kEvalTrainHelp).c_str(), stdout);
    return 0;
  }
  const std::string path = given.ckpt;
  check(!path.empty(), "eval: --ckpt FILE is required (see --help)");
  const incremental::Checkpoint checkpoint = incremental::load_checkpoint(
      path, given.allow_nonfinite ? incremental::NonFiniteTensors::allow : incremental::NonFiniteTensors::refuse);
  const incremental::CheckpointInfo& info = checkpoint.info;

  incremental::TrainOptions options;
  options.dataset = info.dataset == "ade20k" || info.dataset == "coco" ? info.dataset : "voc";
  options.task = info.task;
  options.step = info.step;
  const models::ModelConfig& model = info.model;
  // The depth's reference backbone, resized as the checkpoint's (the small one is ResNet-101 resized).
  options.backbone = cat("resnet", model.depth);
  if (!model.reference_size()) {
    options.blocks = model.backbone_config().resolved_blocks();
    options.width = model.width;
    options.head_channels = model.head_channels;
  }
  options.arch = models::architecture_name(model.arch);
  options.head = models::flavour_name(model.flavour);
  options.output_stride = model.output_stride;
  options.norm = models::norm_name(model.resolved_norm());
  options.pooling = model.pooling_size;
  options.convention = incremental::parse_convention(info.convention);
  options.protocol = incremental::parse_protocol(info.protocol);
  options.crop_size = info.crop_size;
  options.batch_size = info.batch_size;
  options.lr = {info.lr};
  options.epochs = {info.epochs};
  options.seed = info.seed;
  options.test = true;
  run_of(path, info,
         info.dataset == "ade20k" ? "ade"
         : info.dataset == "coco" ? "coco"
                                  : "voc",
         options.output, options.name);
  incremental::parse_train_options(args, options, kEvalOptions);
  incremental::Trainer trainer(options);
  trainer.run();
  return 0;
}

}  // namespace strata::app

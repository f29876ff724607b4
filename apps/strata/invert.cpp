// `strata invert`: synthesises an image set from a step checkpoint by model inversion
// (DeepInversion, incremental/inversion.h), for replay at the next step (`strata train
// --replay-images DIR`).
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/strata/commands.h"
#include "engine/command_line.h"
#include "engine/error.h"
#include "engine/interrupt.h"
#include "incremental/inversion.h"

namespace strata::app {

namespace {

const char* kInvertHelp =
    "usage: strata invert --ckpt FILE --output DIR [options]\n"
    "\n"
    "DeepInversion (Yin et al., CVPR 2020) of a step checkpoint's model: for every class it knows but\n"
    "background, N images are optimised from noise (Adam) so that the frozen model labels them as a target\n"
    "layout of that class and so that the batch statistics of their features match the running statistics of\n"
    "every batch norm / In-place ABN, with total-variation and L2 image priors, random jitter and flips, and\n"
    "optionally the adaptive competition against a student (--student, --adi-scale). The defaults are NVlabs'\n"
    "(imagenet_inversion.py, setting 1). Writes DIR in the VOC layout (JPEGImages/, SegmentationClassAug/ with\n"
    "the model's own labels, splits/train.txt, class_names.txt) and DIR/inversion.json (options, the model's\n"
    "mIoU against the target layouts, the feature-statistics loss at the first and last iteration); DIR\n"
    "appears only when complete. Replay it at the next step with `strata train --replay-images DIR`.\n"
    "\n"
    "options:\n"
    "  --ckpt FILE                 the step checkpoint to invert (required)\n"
    "  --output DIR                the image set to create: a new or empty folder (required)\n"
    "  --images-per-class N        images per class (default 8)\n"
    "  --layout L                  target of an image of class c: whole (every pixel c, default) or random\n"
    "                              (c as a rectangle on background, sometimes over another class)\n"
    "  --size N                    image side in pixels, >= 8 (default 224)\n"
    "  --batch-size N              images optimised together; classes are mixed in each batch (default 16)\n"
    "  --iterations N              Adam iterations per batch (default 2000)\n"
    "  --warmup-iterations N       linear warm-up of the learning rate, then cosine to 0 (default 100)\n"
    "  --lr X                      Adam's learning rate on the images (default 0.2); betas 0.5, 0.9\n"
    "  --main-loss-multiplier X    weight of the cross-entropy against the target layout (default 1)\n"
    "  --r-feature X               weight of the feature-statistics loss (default 0.05)\n"
    "  --first-bn-multiplier X     extra weight of the first norm's term (default 10)\n"
    "  --tv-l2 X                   weight of the L2 total variation (default 1e-4)\n"
    "  --tv-l1 X                   weight of the L1 total variation (default 0)\n"
    "  --l2 X                      weight of the images' L2 norm (default 1e-5)\n"
    "  --adi-scale X               weight of the competition with --student (default 0: off)\n"
    "  --student FILE              a checkpoint of the next step's model (same label space, the teacher's\n"
    "                              channels first) for the competition\n"
    "  --jitter N                  random shift of up to N pixels per axis each iteration (default 30)\n"
    "  --no-flip                   no random horizontal flips\n"
    "  --no-clip                   do not clip the images to the valid pixel range after each step\n"
    "  --class-names FILE          a class_names.txt naming the checkpoint's label space (default: the\n"
    "                              dataset's published names, or numbered ones)\n"
    "  --seed N                    noise, jitter, flips and layouts (default 42)\n"
    "  --device D                  cpu, cuda or cuda:<i> (default: cuda when a GPU is visible)\n"
    "  --no-progress               no progress bar\n";

}  // namespace

int run_invert(const Args& args) {
  incremental::InvertSetOptions o;
  incremental::InversionOptions& inv = o.inversion;
  std::string layout = "whole";
  bool no_flip = false, no_clip = false, no_progress = false;
  CommandLine command_line("invert");
  command_line.text("--ckpt", "FILE", o.checkpoint);
  command_line.text("--output", "DIR", o.output);
  command_line.integer("--images-per-class", "N", o.images_per_class, 1);
  command_line.text("--layout", "L", layout);
  command_line.integer("--size", "N", inv.size, 8);
  command_line.integer("--batch-size", "N", inv.batch_size, 1);
  command_line.integer("--iterations", "N", inv.iterations, 1);
  command_line.integer("--warmup-iterations", "N", inv.warmup_iterations, 0);
  command_line.real("--lr", "X", inv.lr);
  command_line.real("--main-loss-multiplier", "X", inv.main_loss_multiplier);
  command_line.real("--r-feature", "X", inv.r_feature);
  command_line.real("--first-bn-multiplier", "X", inv.first_bn_multiplier);
  command_line.real("--tv-l2", "X", inv.tv_l2);
  command_line.real("--tv-l1", "X", inv.tv_l1);
  command_line.real("--l2", "X", inv.l2);
  command_line.real("--adi-scale", "X", inv.adi_scale);
  command_line.text("--student", "FILE", o.student);
  command_line.integer("--jitter", "N", inv.jitter, 0);
  command_line.flag("--no-flip", no_flip);
  command_line.flag("--no-clip", no_clip);
  command_line.text("--class-names", "FILE", o.class_names);
  command_line.integer("--seed", "N", inv.seed);
  command_line.text("--device", "D", o.device);
  command_line.flag("--no-progress", no_progress);
  if (!command_line.parse(args)) {
    std::fputs(kInvertHelp, stdout);
    return 0;
  }
  o.layout = incremental::parse_inversion_layout(layout);
  inv.flip = !no_flip;
  inv.clip = !no_clip;
  o.progress = !no_progress;

  StopOnSignals signals;
  try {
    const incremental::InvertSetReport r = incremental::invert_checkpoint(o, stdout, &signals.flag());
    std::printf(
        "strata invert: %lld images of %zu classes -> %s (%.0f s)\n"
        "  the model's mIoU against the target layouts: %.2f%% (chance %.2f%%)\n"
        "  feature-statistics loss: %.4g at the first iteration, %.4g at the last (mean over batches)\n"
        "  cross-entropy against the targets: %.4g at the first iteration, %.4g at the last\n",
        static_cast<long long>(r.images), r.channels.size(), o.output.c_str(), r.seconds, 100 * r.mean_iou,
        100 * r.chance_mean_iou, r.feature_first, r.feature_last, r.cross_entropy_first, r.cross_entropy_last);
  } catch (const Interrupted& e) {
    std::fprintf(stderr, "strata invert: interrupted: %s; nothing was written\n", e.what());
    return 128 + e.signal();
  }
  return 0;
}

}  // namespace strata::app

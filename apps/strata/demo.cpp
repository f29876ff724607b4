// `strata demo`: the main job. Class-incremental segmentation on the CPU in a few minutes: on a
// generated VOC-layout dataset (20 classes; written to <output>/demo-data when absent), a small
// DeepLabV3 learns task 15-5 overlapped — step 0 learns background + classes 1..15, step 1 adds
// classes 16..20 from images where the old classes are labelled background. Step 1 runs twice from
// the SAME step-0 checkpoint (as MiB's 15-5 and 15-1 share one step-0 model, SPEC §1.3): with
// fine-tuning (FT) and with MiB (unbiased CE, unbiased KD, balanced init). The table shows FT
// forgetting the old classes and MiB keeping most of them.
//
// Why 15-5 overlapped: in the overlapped protocol a step's images also contain old classes,
// labelled background, which is the background shift MiB addresses; and FT then actively learns
// to call old objects background, so forgetting shows within a few epochs. With 15 old classes and
// 5 new ones the old mean is over many classes, so one lucky class does not decide it.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/strata/commands.h"
#include "data/generate.h"
#include "engine/atomic_file.h"
#include "engine/command_line.h"
#include "engine/error.h"
#include "incremental/options.h"
#include "incremental/run_report.h"
#include "incremental/trainer.h"

namespace strata::app {

namespace {

const char* kDemoHelp =
    "usage: strata demo [--output DIR] [--seed N] [--workers N]\n"
    "\n"
    "Class-incremental semantic segmentation on the CPU in a few minutes. Generates a VOC-layout dataset of\n"
    "textured scenes with 20 object classes (300 train / 100 val images, ~96 px) in DIR/demo-data when absent,\n"
    "trains step 0 of task 15-5 (overlapped protocol: background + classes 1-15), then step 1 (classes 16-20)\n"
    "twice from the same step-0 checkpoint: with fine-tuning (FT) and with MiB (unbiased cross-entropy,\n"
    "unbiased distillation x10, balanced classifier init). Prints old/new/all mean IoU after each step, side by\n"
    "side, with and without background.\n"
    "\n"
    "Model: strata's small configuration (DeepLabV3, MiB head with 64 channels on a ResNet-14 of width 16: one\n"
    "bottleneck per stage, In-place ABN, output stride 16; 1.5 M parameters), crop 64, batch 8; step 0: 30\n"
    "epochs at lr 0.05, step 1: 15 epochs at lr 0.005 (the references' 10x lower lr after step 0), SGD Nesterov\n"
    "0.9, weight decay 1e-4, poly 0.9. Checkpoints, JSONL logs, results CSVs and the test images' prediction\n"
    "strips (DIR/runs/predictions/<run>/step<k>/) go to DIR/runs; `strata report` of the three runs to\n"
    "DIR/runs/report.html.\n"
    "\n"
    "options:\n"
    "  --output DIR   where the data and runs go (default strata-demo)\n"
    "  --seed N       model and loader seed (default 42)\n"
    "  --workers N    loader threads (default 2)\n";

struct DemoOptions {
  std::string output = "strata-demo";
  uint64_t seed = 42;
  int workers = 2;
};

std::string cell(double fraction) {
  if (!std::isfinite(fraction)) return "    -";
  char text[16];
  std::snprintf(text, sizeof(text), "%5.1f", 100 * fraction);
  return text;
}

std::string triple(double old_classes, double new_classes, double all) {
  return cat(cell(old_classes), " ", cell(new_classes), " ", cell(all));
}

}  // namespace

int run_demo(const Args& args) {
  DemoOptions o;
  CommandLine command_line;
  command_line.text("--output", "DIR", o.output);
  command_line.integer("--seed", "N", o.seed);
  command_line.integer("--workers", "N", o.workers, 1);
  if (!command_line.parse(args)) {
    std::fputs(kDemoHelp, stdout);
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path root(o.output);
  const std::string data_dir = (root / "demo-data").string();

  data::GenerateOptions generate;
  generate.classes = 20;
  generate.train = 300;
  generate.val = 100;
  generate.size = 96;
  generate.seed = 0;
  const bool have_data = std::filesystem::exists(root / "demo-data" / "class_names.txt") &&
                         std::filesystem::exists(root / "demo-data" / "splits" / "val.txt");
  if (!have_data) {
    std::printf("strata demo: generating %d train + %d val scenes with %d classes in %s\n", generate.train,
                generate.val, generate.classes, data_dir.c_str());
    data::generate_dataset(data_dir, generate);
  } else {
    std::printf("strata demo: using the generated dataset in %s\n", data_dir.c_str());
  }

  incremental::TrainOptions base;
  base.dataset = "voc";
  base.data_root = data_dir;
  base.task = "15-5";
  base.protocol = incremental::Protocol::overlapped;
  base.convention = incremental::Convention::plop;
  base.backbone = "small";
  base.output_stride = 16;
  base.crop_size = 64;
  base.batch_size = 8;
  base.lr = {0.05, 0.005};
  base.epochs = {30, 15};
  base.seed = o.seed;
  base.workers = o.workers;
  base.output = (root / "runs").string();
  base.log_interval = 100;
  base.print_tables = false;

  incremental::TrainOptions step0 = base;
  step0.name = "demo-step0";
  step0.step = 0;
  step0.method = "FT";
  step0.save_predictions = (root / "runs" / "predictions" / step0.name).string();
  incremental::Trainer step0_trainer(step0);
  const incremental::StepSetup setup = step0_trainer.setup(0);
  std::printf("strata demo: %s\n  model: %s (%lld parameters at step 1), crop %d, batch %d, %d OpenMP threads\n\n",
              step0_trainer.task().describe().c_str(), setup.model.describe().c_str(),
              static_cast<long long>(models::SegmentationModel(step0_trainer.setup(1).model).parameter_count()),
              setup.recipe.crop_size, setup.recipe.batch_size, omp_get_max_threads());
  const incremental::StepResult first = step0_trainer.run_step(0);

  auto run_step1 = [&](const std::string& method, const std::string& name) {
    incremental::TrainOptions options = base;
    options.name = name;
    options.step = 1;
    options.method = method;
    options.step_ckpt = first.checkpoint;
    options.save_predictions = (root / "runs" / "predictions" / name).string();
    std::printf("\n");
    incremental::Trainer trainer(options);
    return trainer.run_step(1);
  };
  const incremental::StepResult ft = run_step1("FT", "demo-ft");
  const incremental::StepResult mib = run_step1("MiB", "demo-mib");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const incremental::Task& task = step0_trainer.task();
  const incremental::StepMeans& s0 = first.means;
  auto row = [](const char* label, const std::string& ft_cells, const std::string& mib_cells) {
    std::printf("  %-32s %s   %s\n", label, ft_cells.c_str(), mib_cells.c_str());
  };
  std::printf("\nmean IoU (%%) on the generated test images; old = classes of step 0, new = classes of step 1\n");
  std::printf("  %-32s %-17s   %-17s\n", "", "        FT", "       MiB");
  std::printf("  %-32s %-17s   %-17s\n", "", "  old   new   all", "  old   new   all");
  std::printf("after step 0 (classes %d-%d, one model)\n", task.classes(0).front(), task.classes(0).back());
  const std::string s0_with = triple(s0.old_with_background, s0.new_with_background, s0.all_with_background);
  const std::string s0_without =
      triple(s0.old_without_background, s0.new_without_background, s0.all_without_background);
  row("background included (PLOP)", s0_with, s0_with);
  row("background excluded (MiB)", s0_without, s0_without);
  std::printf("after step 1 (+ classes %d-%d)\n", task.classes(1).front(), task.classes(1).back());
  row("background included (PLOP)",
      triple(ft.means.old_with_background, ft.means.new_with_background, ft.means.all_with_background),
      triple(mib.means.old_with_background, mib.means.new_with_background, mib.means.all_with_background));
  row("background excluded (MiB)",
      triple(ft.means.old_without_background, ft.means.new_without_background, ft.means.all_without_background),
      triple(mib.means.old_without_background, mib.means.new_without_background, mib.means.all_without_background));
  std::printf(
      "\nold classes (background excluded): %.1f after step 0 -> FT %.1f, MiB %.1f after step 1.\n"
      "FT learns the new classes from images where old objects are labelled background and forgets them;\n"
      "MiB's unbiased losses and distillation from the step-0 model keep them.\n",
      100 * s0.old_without_background, 100 * ft.means.old_without_background, 100 * mib.means.old_without_background);
  std::printf("\nwall time %.0f s (data %s, step 0 %.0f s, FT step 1 %.0f s, MiB step 1 %.0f s, training + evaluation)\n",
              seconds, have_data ? "reused" : "generated", first.train_seconds + first.eval_seconds,
              ft.train_seconds + ft.eval_seconds, mib.train_seconds + mib.eval_seconds);
  std::printf("checkpoints, logs (JSONL), results (CSV) and prediction strips in %s\n", base.output.c_str());
  const std::string report = (std::filesystem::path(base.output) / "report.html").string();
  write_file_atomically(report, incremental::render_report_html(incremental::read_runs({base.output})));
  std::printf("report of the three runs (strata report): %s\n", report.c_str());
  return 0;
}

}  // namespace strata::app

// `strata compare`: several methods on one setting, every step, and one table of their old/new/all
// mean IoU after the last step (MiB's Table 1 layout: one row per method), with and without
// background. Each method is a `strata train --step all` run named <name>-<method> with the same
// options and seed. Methods whose step 0 trains as FT's (Method::step0_is_fine_tuning) share one
// step-0 checkpoint, trained once and copied to each run's step-0 path (as MiB's 15-5 and 15-1 runs
// share one step-0 model); the others (LwF-MC's BCE from step 0) train their own.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/atomic_file.h"
#include "engine/command_line.h"
#include "engine/error.h"
#include "incremental/method.h"
#include "incremental/options.h"
#include "incremental/trainer.h"

namespace strata::app {

namespace {

const char* kCompareUsage =
    "usage: strata compare --data-root DIR [--methods FT,LwF,MiB] [train options]\n"
    "\n"
    "Trains every step of one class-incremental setting once per method, with the same options and seed, and\n"
    "prints one row per method: old/new/all mean IoU after the last step, with background (PLOP's columns) and\n"
    "without (MiB's), and the training time. Each method's run is named <name>-<method> (--name, default\n"
    "compare), so its checkpoints, logs and results are those of `strata train --step all`. Methods whose step 0\n"
    "trains as FT's share one step-0 checkpoint, trained once; LwF-MC trains its own (its BCE acts from step 0).\n"
    "\n"
    "example (a 4-step task of 16 classes on generated data, strata's small model):\n"
    "  strata make-dataset --out data/generated16 --classes 16\n"
    "  strata compare --data-root data/generated16 --task 10-2-2-2 --overlap --backbone small --crop-size 64 \\\n"
    "                 --batch-size 8 --epochs 30,15 --lr 0.05,0.005 --methods FT,LwF,LwF-MC,ILT,MiB\n"
    "\n"
    "options: --methods LIST (comma-separated presets; default every one), and every `strata train` option but\n"
    "--step, --method, --ckpt, --step-ckpt and --test (see `strata train --help`).\n";

struct CompareRow {
  std::string method;
  incremental::StepMeans means;
  double seconds = 0;
};

std::vector<std::string> split_methods(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(text.substr(start, comma - start));
    check(!out.back().empty(), "--methods expects comma-separated method names, got '", text, "'");
    start = comma + 1;
  }
  return out;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string cell(double fraction) {
  if (!std::isfinite(fraction)) return "    -";
  char text[16];
  std::snprintf(text, sizeof(text), "%5.1f", 100 * fraction);
  return text;
}

}  // namespace

int run_compare(const Args& args) {
  std::vector<std::string> methods = incremental::method_names();
  incremental::TrainOptions base;
  base.name = "compare";
  // Every train option but those that choose what compare itself varies.
  std::vector<std::string> accepted;
  for (const incremental::OptionSpec& spec : incremental::train_option_specs()) {
    const std::string name = spec.name;
    if (name != "--step" && name != "--method" && name != "--ckpt" && name != "--step-ckpt" && name != "--test")
      accepted.push_back(name);
  }
  CommandLine command_line;
  command_line.value("--methods", "LIST", [&](const std::string& v) { methods = split_methods(v); });
  incremental::add_train_options(command_line, base, accepted);
  incremental::refuse_train_options(command_line, accepted, "compare trains every step once per method");
  if (!command_line.parse(args)) {
    std::fputs(kCompareUsage, stdout);
    return 0;
  }
  base.all_steps = true;
  base.print_tables = false;

  std::vector<CompareRow> rows;
  std::string task_description;
  int last_step = 0;
  std::string shared_step0;  // the step-0 checkpoint of the first method that trains as FT there
  for (const std::string& method : methods) {
    incremental::TrainOptions options = base;
    options.method = method;
    options.name = cat(base.name, "-", lower(method));
    incremental::Trainer trainer(options);  // validates the method name and the flags against it
    const bool shares = incremental::Method(trainer.setup(0).method).step0_is_fine_tuning();
    task_description = trainer.task().describe();
    last_step = trainer.task().num_steps() - 1;
    std::printf("\n== %s\n", trainer.setup(0).method.describe().c_str());
    const auto start = std::chrono::steady_clock::now();
    std::vector<incremental::StepResult> results;
    if (shares && !shared_step0.empty()) {
      const std::string own = trainer.checkpoint_path(0);
      if (own != shared_step0) {
        std::filesystem::create_directories(std::filesystem::path(own).parent_path());
        std::ifstream in(shared_step0, std::ios::binary);
        check(in.good(), "compare: cannot read the shared step-0 checkpoint ", shared_step0);
        write_file_atomically(own, std::string(std::istreambuf_iterator<char>(in), {}));
      }
      std::printf("step 0: shared with the first method trained as FT (%s)\n", shared_step0.c_str());
      for (int step = 1; step < trainer.task().num_steps(); ++step) results.push_back(trainer.run_step(step));
    } else {
      results = trainer.run();
      if (shares) shared_step0 = trainer.checkpoint_path(0);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    check(!results.empty() && !results.back().stopped, "compare: method ", method, " did not finish its last step");
    rows.push_back({trainer.setup(0).method.describe(), results.back().means, seconds});
  }

  std::printf(
      "\n%s, after step %d; mean IoU %% on the test split (old = step-0 classes, new = later steps'); time:\n"
      "training and evaluation of the method's steps (a shared step 0 counts for the first method only)\n\n",
      task_description.c_str(), last_step);
  std::printf("| method | old | new | all | old (no bg) | new (no bg) | all (no bg) | time |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const CompareRow& row : rows) {
    const incremental::StepMeans& m = row.means;
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %.0f s |\n", row.method.c_str(),
                cell(m.old_with_background).c_str(), cell(m.new_with_background).c_str(),
                cell(m.all_with_background).c_str(), cell(m.old_without_background).c_str(),
                cell(m.new_without_background).c_str(), cell(m.all_without_background).c_str(), row.seconds);
  }
  return 0;
}

}  // namespace strata::app

// strata: class-incremental semantic segmentation from scratch. `strata --help` lists the
// subcommands; each one explains its own options with `--help`.
#include <cstdio>
#include <exception>
#include <string>

#include "apps/strata/commands.h"
#include "engine/error.h"
#include "engine/version.h"

namespace strata::app {

int run_summary(const Args& args);  // summary.cpp

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"demo", "the main job: class-incremental FT vs MiB on generated data, CPU, minutes (`strata demo --help`)",
       run_demo},
      {"train", "train the steps of a class-incremental task, MiB-style options (`strata train --help`)", run_train},
      {"compare", "several methods on one setting, every step, one table of old/new/all mIoU (`strata compare --help`)",
       run_compare},
      {"eval", "evaluate a step checkpoint on its test set (`strata eval --help`)", run_eval},
      {"make-dataset", "write a generated segmentation dataset in VOC or COCO layout (`strata make-dataset --help`)",
       run_make_dataset},
      {"profile",
       "where a training iteration's time and memory go, per phase, op and memory row; --compare "
       "two methods: the cost of distillation (`strata profile --help`)",
       run_profile},
      {"report",
       "one self-contained HTML page of runs: settings, mIoU tables and charts, losses, predictions "
       "(`strata report --help`)",
       run_report},
      {"invert",
       "synthesise replay images from a step checkpoint by model inversion (DeepInversion) (`strata invert "
       "--help`)",
       run_invert},
      {"bench", "benchmarks side by side with PyTorch (`strata bench --help`)", run_bench},
      {"summary", "a model's layers, output shapes, parameters and multiply-adds per stage", run_summary},
  };
  return table;
}

}  // namespace strata::app

namespace {

void print_help() {
  std::printf("usage: strata <command> [options]\n\ncommands:\n");
  for (const auto& c : strata::app::commands()) std::printf("  %-14s %s\n", c.name, c.summary);
  std::printf("\n`strata <command> --help` explains a command's options; `strata --version` the build.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::printf("%s\n", strata::build_description().c_str());
    return 0;
  }
  std::string name = argv[1];
  strata::app::Args args(argv + 2, argv + argc);
  for (const auto& c : strata::app::commands()) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "strata %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "strata: unknown command '%s'\n\n", name.c_str());
  print_help();
  return 2;
}

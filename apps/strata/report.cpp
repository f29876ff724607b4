// `strata report`: one self-contained HTML page of finished runs (incremental/run_report.h), from
// the JSONL logs their --output folders hold.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/atomic_file.h"
#include "engine/command_line.h"
#include "engine/error.h"
#include "incremental/run_report.h"

namespace strata::app {

namespace {

const char* kReportHelp =
    "usage: strata report RUN_DIR [RUN_DIR...] [--output FILE] [--predictions N]\n"
    "\n"
    "Writes one HTML page of the runs in each RUN_DIR (a `strata train --output` folder; every\n"
    "logs/<task>-<dataset>_<name>.jsonl in it is one run): per run the setting and recipe, old/new/all mIoU\n"
    "per step with and without background, mIoU over steps, per-class IoU across steps as a heat map, the\n"
    "loss terms over iterations, and the first prediction strips of each step when the run wrote them\n"
    "(--save-predictions). With several runs, first their last steps side by side and their curves on one\n"
    "chart. Self-contained: CSS, SVG charts and images are inline; the page loads nothing.\n"
    "\n"
    "options:\n"
    "  --output FILE    the page (default: RUN_DIR/report.html with one RUN_DIR, else report.html)\n"
    "  --predictions N  prediction strips shown per step and run (default 4; 0 for none)\n";

struct ReportOptions {
  std::vector<std::string> run_dirs;
  std::string output;
  int predictions = 4;
  bool help = false;
};

ReportOptions parse(const Args& args) {
  ReportOptions o;
  CommandLine command_line;
  command_line.positionals("RUN_DIR", o.run_dirs);
  command_line.text("--output", "FILE", o.output);
  command_line.integer("--predictions", "N", o.predictions, 0);
  if (!command_line.parse(args)) {
    o.help = true;
    return o;
  }
  check(!o.run_dirs.empty(), "report: give at least one RUN_DIR (see --help)");
  if (o.output.empty()) {
    o.output = o.run_dirs.size() == 1 ? (std::filesystem::path(o.run_dirs[0]) / "report.html").string() : "report.html";
  }
  return o;
}

}  // namespace

int run_report(const Args& args) {
  const ReportOptions o = parse(args);
  if (o.help) {
    std::fputs(kReportHelp, stdout);
    return 0;
  }
  const std::vector<incremental::RunLog> runs = incremental::read_runs(o.run_dirs, o.predictions);
  write_file_atomically(o.output, incremental::render_report_html(runs));
  std::printf("strata report: %zu run%s -> %s\n", runs.size(), runs.size() == 1 ? "" : "s", o.output.c_str());
  return 0;
}

}  // namespace strata::app

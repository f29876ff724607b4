// `strata bench coco`: reading a COCO instances file (data/coco.h, streamed) against pycocotools'
// COCO(path) (json.load of the whole document), time and peak resident memory, and the label maps
// of the first images against annToMask of their annotations.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "data/coco.h"
#include "engine/command_line.h"
#include "engine/error.h"

namespace strata::app {

namespace {

const char* kBenchCocoHelp =
    "usage: strata bench coco --annotations FILE [--labels N] [--python EXE] [--no-python]\n"
    "\n"
    "Reads a COCO instances file (e.g. annotations/instances_train2017.json, 448 MB) as strata's COCO\n"
    "reader does, then builds the label maps of the first N images (default 1000, one thread), and runs\n"
    "the same with pycocotools (COCO(path), then annToMask of those images' annotations) in Python.\n"
    "Prints wall time and peak resident memory (VmHWM; Python's ru_maxrss) of each side and their ratios.\n";

int64_t peak_resident() {
  std::ifstream status("/proc/self/status");
  std::string key, unit;
  int64_t kb = 0;
  while (status >> key) {
    if (key == "VmHWM:" && status >> kb >> unit) return kb * 1024;
  }
  return -1;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int run_bench_coco(const Args& args) {
  std::string annotations, python = default_python();
  int labels = 1000;
  bool with_python = true;
  CommandLine command_line("bench coco");
  command_line.text("--annotations", "FILE", annotations);
  command_line.integer("--labels", "N", labels, 0);
  command_line.text("--python", "EXE", python);
  command_line.flag("--no-python", [&] { with_python = false; });
  if (!command_line.parse(args)) {
    std::fputs(kBenchCocoHelp, stdout);
    return 0;
  }
  check(!annotations.empty(), "bench coco: --annotations FILE is required (see --help)");

  auto start = std::chrono::steady_clock::now();
  data::CocoAnnotations coco = data::read_coco_annotations(annotations);
  const double read_seconds = seconds_since(start);
  const int64_t peak = peak_resident();
  const int64_t labelled = std::min<int64_t>(labels, static_cast<int64_t>(coco.images.size()));
  std::vector<int64_t> order(coco.images.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return coco.images[static_cast<size_t>(a)].file_name < coco.images[static_cast<size_t>(b)].file_name;
  });
  start = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < labelled; ++k) data::coco_label_map(coco, order[static_cast<size_t>(k)]);
  const double label_seconds = seconds_since(start);

  std::printf("strata bench coco: %s: %zu images, %zu annotations, %zu categories\n", annotations.c_str(),
              coco.images.size(), coco.annotations.size(), coco.categories.size());
  std::printf("%-34s %12s %12s\n", "", "strata", with_python ? "pycocotools" : "");
  if (!with_python) {
    std::printf("%-34s %12.2f\n%-34s %12.1f\n%-34s %12.2f\n", "read (s)", read_seconds, "peak resident (MB)",
                static_cast<double>(peak) / 1e6, "label maps (ms per image)",
                labelled > 0 ? 1e3 * label_seconds / static_cast<double>(labelled) : 0.0);
    return 0;
  }
  const json::Value theirs =
      run_python_json(python, "tools/bench_coco_pycocotools.py",
                      json::Value(json::Object{{"annotations", annotations}, {"labels", labels}}), {});
  const double their_read = theirs.at("load_seconds").as_double();
  const double their_peak = static_cast<double>(theirs.at("peak_rss").as_int());
  const double their_label = theirs.at("label_seconds").as_double();
  const double per_ours = labelled > 0 ? 1e3 * label_seconds / static_cast<double>(labelled) : 0.0;
  const double per_theirs = labelled > 0 ? 1e3 * their_label / static_cast<double>(labelled) : 0.0;
  std::printf("%-34s %12.2f %12.2f   ratio %.2f\n", "read (s)", read_seconds, their_read, read_seconds / their_read);
  std::printf("%-34s %12.1f %12.1f   ratio %.2f\n", "peak resident (MB)", static_cast<double>(peak) / 1e6,
              their_peak / 1e6, static_cast<double>(peak) / their_peak);
  std::printf("%-34s %12.2f %12.2f   ratio %.2f\n", "label maps (ms per image)", per_ours, per_theirs,
              per_theirs > 0 ? per_ours / per_theirs : 0.0);
  std::printf(
      "(label maps: strata's whole label map of each of the first %lld images by file name; pycocotools' "
      "annToMask of each of their annotations, without composing them)\n",
      static_cast<long long>(labelled));
  return 0;
}

}  // namespace strata::app

// `strata make-dataset`: writes the generated segmentation dataset (data/generate.h) in the Pascal
// VOC layout, ready for `--dataset voc --data-root DIR`, or in COCO's (`--layout coco`), ready for
// `--dataset coco --data-root DIR`.
#include <chrono>
#include <cstdio>
#include <string>

#include "apps/strata/commands.h"
#include "data/generate.h"
#include "engine/command_line.h"
#include "engine/error.h"

namespace strata::app {

namespace {

const char* kMakeDatasetHelp =
    "usage: strata make-dataset --out DIR [options]\n"
    "\n"
    "Writes a generated segmentation dataset in the Pascal VOC layout (JPEGImages/, SegmentationClassAug/,\n"
    "splits/{train_aug,val}.txt, ImageSets/Segmentation/, class_names.txt, README.txt): textured scenes of\n"
    "several objects per image, each class a combination of colour, texture and shape, with clutter,\n"
    "occlusion, co-occurring classes and a 255 void band around objects. Deterministic for a seed.\n"
    "With --layout coco the scenes are written in COCO 2017's layout instead (train2017/, val2017/,\n"
    "annotations/instances_{train,val}2017.json): every object an instance annotation, as polygons, a\n"
    "compressed or an uncompressed RLE, some of them crowd regions, masks overlapping.\n"
    "\n"
    "options:\n"
    "  --out DIR        output folder (created; existing files of the same names are replaced)\n"
    "  --layout L       voc (default) or coco\n"
    "  --classes N      object classes 1..N (default 20; labels 0 = background, 255 = void)\n"
    "  --train N        training images (default 300)\n"
    "  --val N          validation images (default 100)\n"
    "  --size S         typical image side: shorter side S x U(0.75, 1.25), aspect 3/4..4/3 (default 128)\n"
    "  --width W --height H   every image exactly W x H instead (e.g. 500 x 375, VOC's usual size)\n"
    "  --objects N      at most N objects per scene (default 4)\n"
    "  --band B         void band half-width in pixels, 0 for none (default 1)\n"
    "  --quality Q      JPEG quality (default 90)\n"
    "  --seed K         random seed (default 0)\n"
    "  --threads T      writer threads (default: all hardware threads)\n";

}  // namespace

int run_make_dataset(const Args& args) {
  data::GenerateOptions options;
  std::string out;
  // The generator checks the upper bounds (data/generate.h); the command line the lower ones.
  CommandLine command_line;
  command_line.text("--out", "DIR", out);
  command_line.value("--layout", "L", [&](const std::string& layout) {
    check(layout == "voc" || layout == "coco", "--layout '", layout, "': expected voc or coco");
    options.layout = layout == "coco" ? data::GeneratedLayout::coco : data::GeneratedLayout::voc;
  });
  command_line.integer("--classes", "N", options.classes, 1);
  command_line.integer("--train", "N", options.train, 0);
  command_line.integer("--val", "N", options.val, 0);
  command_line.integer("--size", "S", options.size, 16);
  command_line.integer("--width", "W", options.width, 16);
  command_line.integer("--height", "H", options.height, 16);
  command_line.integer("--objects", "N", options.max_objects, 1);
  command_line.integer("--band", "B", options.band, 0);
  command_line.integer("--quality", "Q", options.jpeg_quality, 1);
  command_line.integer("--seed", "K", options.seed);
  command_line.integer("--threads", "T", options.threads, 1);
  if (!command_line.parse(args)) {
    std::fputs(kMakeDatasetHelp, stdout);
    return 0;
  }
  check(!out.empty(), "make-dataset: --out DIR is required (see --help)");
  auto start = std::chrono::steady_clock::now();
  data::generate_dataset(out, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "strata make-dataset: wrote %d train + %d val images, %d classes, seed %llu, %s layout, to %s in %.2f s\n",
      options.train, options.val, options.classes, static_cast<unsigned long long>(options.seed),
      options.layout == data::GeneratedLayout::coco ? "COCO" : "VOC", out.c_str(), seconds);
  return 0;
}

}  // namespace strata::app

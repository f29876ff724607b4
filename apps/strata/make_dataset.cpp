// `strata make-dataset`: writes the generated segmentation dataset (data/generate.h) in the Pascal
// VOC layout, ready for `--dataset voc --data-root DIR`.
#include <chrono>
#include <cstdio>
#include <string>

#include "apps/strata/commands.h"
#include "data/generate.h"
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
    "\n"
    "options:\n"
    "  --out DIR        output folder (created; existing files of the same names are replaced)\n"
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

int64_t parse_int(const std::string& option, const std::string& value) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == value.size() && !value.empty(), "make-dataset: ", option, " expects an integer, got '", value, "'");
  return v;
}

}  // namespace

int run_make_dataset(const Args& args) {
  data::GenerateOptions options;
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kMakeDatasetHelp, stdout);
      return 0;
    }
    check(a.rfind("--", 0) == 0, "make-dataset: unexpected argument '", a, "' (see --help)");
    check(i + 1 < args.size(), "make-dataset: ", a, " needs a value (see --help)");
    const std::string& v = args[++i];
    auto as_int = [&] { return static_cast<int>(parse_int(a, v)); };
    // Where 0 means "not given" in GenerateOptions, the command line asks for a real value.
    auto at_least = [&](int min) {
      const int n = as_int();
      check(n >= min, "make-dataset: ", a, " must be >= ", min, ", got ", v);
      return n;
    };
    if (a == "--out") {
      out = v;
    } else if (a == "--classes") {
      options.classes = as_int();
    } else if (a == "--train") {
      options.train = as_int();
    } else if (a == "--val") {
      options.val = as_int();
    } else if (a == "--size") {
      options.size = as_int();
    } else if (a == "--width") {
      options.width = at_least(16);
    } else if (a == "--height") {
      options.height = at_least(16);
    } else if (a == "--objects") {
      options.max_objects = as_int();
    } else if (a == "--band") {
      options.band = as_int();
    } else if (a == "--quality") {
      options.jpeg_quality = as_int();
    } else if (a == "--seed") {
      check(v.find('-') == std::string::npos, "make-dataset: --seed must be >= 0, got '", v, "'");
      options.seed = static_cast<uint64_t>(parse_int(a, v));
    } else if (a == "--threads") {
      options.threads = at_least(1);
    } else {
      throw Error(cat("make-dataset: unknown option '", a, "' (see --help)"));
    }
  }
  check(!out.empty(), "make-dataset: --out DIR is required (see --help)");
  auto start = std::chrono::steady_clock::now();
  data::generate_dataset(out, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("strata make-dataset: wrote %d train + %d val images, %d classes, seed %llu, to %s in %.2f s\n",
              options.train, options.val, options.classes, static_cast<unsigned long long>(options.seed), out.c_str(),
              seconds);
  return 0;
}

}  // namespace strata::app

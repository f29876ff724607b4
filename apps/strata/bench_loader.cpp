// `strata bench loader`: training-loader throughput, decode + RandomResizedCrop(scale 0.5-2) + flip
// to uint8 crops, for strata's Loader and for the PyTorch/torchvision pipeline MiB uses
// (tools/bench_loader_torch.py: PIL decode, F.resized_crop, hflip, uint8 arrays) on the same files
// in the same run, per worker thread, with the ratio strata / PyTorch.
// Two generated datasets are measured: the default generated data (about 128 px) and VOC-size
// 500x375 JPEGs; both are written to a temporary folder and removed afterwards.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "data/generate.h"
#include "data/loader.h"
#include "engine/command_line.h"
#include "engine/error.h"
#include "engine/json.h"

namespace strata::app {

namespace {

const char* kBenchLoaderHelp =
    "usage: strata bench loader [options]\n"
    "\n"
    "Images per second per worker thread of the training loader (decode JPEG + PNG label,\n"
    "RandomResizedCrop(scale 0.5-2.0, ratio 3/4-4/3) with Pillow-exact bilinear/nearest resampling,\n"
    "horizontal flip, uint8 output) for strata and for PyTorch/torchvision on the same generated files.\n"
    "\n"
    "options:\n"
    "  --crop C          crop size (default 512)\n"
    "  --images N        images per dataset (default 64)\n"
    "  --threads LIST    worker counts, comma separated (default 1,2)\n"
    "  --batch B         strata batch size (default 8)\n"
    "  --seconds S       minimum measured time per configuration (default 3)\n"
    "  --python PATH     interpreter with torch and torchvision (default: STRATA_PYTHON or the venv)\n"
    "  --no-torch        strata only\n";

struct Config {
  int crop = 512;
  int images = 64;
  std::vector<int> threads = {1, 2};
  int batch = 8;
  double seconds = 3.0;
  std::string python;
  bool torch = true;
};

// Images per second of the strata loader with `workers` threads, over whole epochs, for at least
// `seconds` after one warm-up epoch.
double strata_rate(const data::Dataset& dataset, const Config& config, int workers) {
  data::LoaderOptions options;
  options.batch_size = config.batch;
  options.crop_size = config.crop;
  options.workers = workers;
  options.prefetch = 2 * workers + 1;
  options.drop_last = false;
  data::Loader loader(dataset, options);
  int64_t epoch = 0;
  auto run_epoch = [&] {
    loader.start_epoch(epoch++);
    int64_t n = 0;
    while (std::optional<data::Batch> b = loader.next()) n += b->images.size(0);
    return n;
  };
  run_epoch();
  int64_t images = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    images += run_epoch();
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < config.seconds);
  return static_cast<double>(images) / elapsed;
}

}  // namespace

int run_bench_loader(const Args& args) {
  Config config;
  CommandLine options("bench loader");
  options.integer("--crop", "C", config.crop, 1);
  options.integer("--images", "N", config.images, 1);
  options.integer("--batch", "B", config.batch, 1);
  options.value("--seconds", "S", [&](const std::string& v) {
    config.seconds = parse_real("--seconds", v);
    check(config.seconds > 0, "--seconds must be > 0, got ", v);
  });
  options.text("--python", "PATH", config.python);
  options.value("--threads", "LIST", [&](const std::string& v) {
    config.threads.clear();
    for (const std::string& n : split_commas(v)) config.threads.push_back(int_at_least("--threads", n, 1));
  });
  options.flag("--no-torch", [&] { config.torch = false; });
  if (!options.parse(args)) {
    std::fputs(kBenchLoaderHelp, stdout);
    return 0;
  }
  if (config.python.empty()) config.python = default_python();

  namespace fs = std::filesystem;
  fs::path tmp = fs::temp_directory_path() / ("strata_bench_loader_" + std::to_string(::getpid()));
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{tmp};

  struct Case {
    const char* name;
    data::GenerateOptions options;
  };
  std::vector<Case> cases(2);
  cases[0].name = "generated ~128 px";
  cases[1].name = "VOC-size 500x375";
  cases[1].options.width = 500;
  cases[1].options.height = 375;
  for (Case& c : cases) {
    c.options.train = config.images;
    c.options.val = 0;
  }

  std::printf("strata bench loader: decode (JPEG image + PNG label) + RandomResizedCrop(%d, scale 0.5-2.0) + flip,\n"
              "uint8 output; %d generated images per dataset (JPEG q90), whole epochs, >= %.0f s per row after a\n"
              "warm-up epoch. PyTorch: PIL + torchvision F.resized_crop + hflip + numpy uint8 (%s).\n\n",
              config.crop, config.images, config.seconds, config.torch ? config.python.c_str() : "skipped");
  std::printf("%-20s %7s %14s %14s %14s %14s %8s\n", "dataset", "threads", "strata img/s", "per thread", "torch img/s",
              "per thread", "ratio");
  for (size_t k = 0; k < cases.size(); ++k) {
    fs::path root = tmp / std::to_string(k);
    data::generate_dataset(root.string(), cases[k].options);
    data::Dataset dataset = data::Dataset::voc(root.string(), "train_aug");
    for (int threads : config.threads) {
      double ours = strata_rate(dataset, config, threads);
      double theirs = 0;
      if (config.torch) {
        json::Value input(json::Object{{"root", root.string()},
                                       {"list", "splits/train_aug.txt"},
                                       {"crop", config.crop},
                                       {"workers", threads},
                                       {"min_seconds", config.seconds}});
        json::Value result = run_python_json(config.python, "tools/bench_loader_torch.py", input, {});
        theirs = result.at("images_per_s").as_double();
      }
      if (config.torch) {
        std::printf("%-20s %7d %14.1f %14.1f %14.1f %14.1f %7.2fx\n", cases[k].name, threads, ours, ours / threads,
                    theirs, theirs / threads, ours / theirs);
      } else {
        std::printf("%-20s %7d %14.1f %14.1f %14s %14s %8s\n", cases[k].name, threads, ours, ours / threads, "-", "-",
                    "-");
      }
      std::fflush(stdout);
    }
  }
  std::printf("\nratio = strata / PyTorch images per second (higher is faster). One run per row; the machine's\n"
              "other load shows up in both columns of a row, which is why they are measured back to back.\n");
  return 0;
}

}  // namespace strata::app

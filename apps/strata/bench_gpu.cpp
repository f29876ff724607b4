// `strata bench gpu`: the incremental training step users run on GPUs, measured on a CUDA device —
// MiB on VOC 15-5 step 1 with MiB's DeepLabV3-ResNet-101 (In-place ABN, output stride 16) at 512x512
// — at each --precision and batch, eager and replayed as a CUDA graph (--graphs): images/s, peak
// device memory, and the share of the device's
// roofline floor reached. The floor is the step's counted work (every op's FLOPs and bytes, from the
// profiler's counters) at the device's peak dense bf16 tensor throughput and memory bandwidth, op by
// op: sum over ops of max(FLOPs / peak, bytes / bandwidth). With a PyTorch that has CUDA, the same
// step runs in PyTorch (tools/bench_gpu_torch.py) in strict f32, TF32, eager AMP bf16 and
// torch.compile, and each strata row prints its ratio to PyTorch's same-precision run and to eager
// AMP (the target of ../shared/reference/performance-anchors.md: >= 1.8x PyTorch eager AMP).
//
// A batch that does not fit is retried at 3/4 of its size until one fits (the row says so). Timing:
// --warmup steps, a device synchronisation, then --steps steps and one more synchronisation; memory:
// the caching allocator's peaks over those steps (tensors, and segments held from the device). One
// more step under the profiler gives the counts for the floor.
//
// Runs on the emulator too (tools/gpu_check.sh runs it on a GPU; CI runs a small configuration on the
// emulator so every line of it has run): an emulated device is exact but runs on the CPU, so its
// times mean nothing and the command says so.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "apps/strata/step_batch.h"
#include "engine/allocator.h"
#include "engine/command_line.h"
#include "engine/device_context.h"
#include "engine/error.h"
#include "engine/precision.h"
#include "engine/profiler.h"
#include "incremental/options.h"
#include "models/segmentation_model.h"

#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/context.h"
#endif

namespace strata::app {

namespace {

constexpr const char* kCommand = "bench gpu";

struct Settings {
  std::vector<int64_t> batches = {8, 24};
  int64_t size = 512;
  std::vector<Precision> precisions = {Precision::f32, Precision::tf32};
  std::vector<bool> graphs = {false, true};  // eager, then replayed as a CUDA graph
  std::string backbone = "resnet101";
  std::string method = "mib";
  std::string device = "cuda";
  int warmup = 3;
  int steps = 10;
  bool torch = true;
  std::string python;
};

void print_help() {
  std::printf(
      "usage: strata bench gpu [options]\n\n"
      "The MiB incremental step (VOC 15-5 step 1, MiB's DeepLabV3 with In-place ABN, output stride 16) on a CUDA\n"
      "device at each precision and batch: images/s, peak device memory, and the share of the device's roofline\n"
      "floor reached (the step's FLOPs and bytes, op by op, at the device's bf16 tensor peak and bandwidth). With a\n"
      "PyTorch that has CUDA, the same step in PyTorch (f32, TF32, eager AMP bf16, torch.compile) side by side.\n\n"
      "  --batch N[,N...]      batches (default 8,24; one that does not fit is retried at 3/4 of its size)\n"
      "  --size N              crop, N x N (default 512)\n"
      "  --precision P[,P...]  f32 and/or tf32 (default f32,tf32; bf16 is refused until the model forward casts to "
      "bf16)\n"
      "  --backbone NAME       %s (default resnet101; PyTorch runs resnet50 and resnet101 only)\n"
      "  --method NAME         a method preset (default mib)\n"
      "  --device DEV          cuda or cuda:<i> (default cuda)\n"
      "  --graphs WHICH        off, on or both (default both): the step launched kernel by kernel, and replayed as a\n"
      "                        CUDA graph (captured at its third step: with --warmup >= 3 the timed steps are "
      "replays)\n"
      "  --warmup N            untimed steps per run (default 3; 0: the first timed step chooses the algorithms)\n"
      "  --steps N             timed steps per run (default 10)\n"
      "  --no-torch            strata alone\n"
      "  --python PATH         the interpreter with torch (default: %s)\n",
      models::kBackboneNames, default_python().c_str());
}

bool parse(const Args& args, Settings& s) {
  CommandLine options(kCommand);
  options.value("--batch", "N[,N...]", [&](const std::string& v) {
    s.batches.clear();
    for (const std::string& b : split_commas(v)) s.batches.push_back(integer_at_least("--batch", b, 1));
  });
  options.integer("--size", "N", s.size, 16);
  options.value("--precision", "P[,P...]", [&](const std::string& v) {
    s.precisions.clear();
    for (const std::string& p : split_commas(v)) {
      s.precisions.push_back(parse_precision(p));
      check_model_precision(s.precisions.back());
    }
  });
  options.value("--backbone", "NAME", [&](const std::string& v) {
    models::ModelConfig probe;
    models::apply_backbone(probe, v);
    s.backbone = v;
  });
  options.text("--method", "NAME", s.method);
  options.value("--device", "DEV", [&](const std::string& v) {
    check(v.rfind("cuda", 0) == 0, "--device '", v, "': expected cuda or cuda:<index>");
    s.device = v;
  });
  options.value("--graphs", "WHICH", [&](const std::string& v) {
    check(v == "off" || v == "on" || v == "both", "--graphs '", v, "': expected off, on or both");
    s.graphs = v == "off"  ? std::vector<bool>{false}
               : v == "on" ? std::vector<bool>{true}
                           : std::vector<bool>{false, true};
  });
  options.integer("--warmup", "N", s.warmup, 0);
  options.integer("--steps", "N", s.steps, 1);
  options.flag("--no-torch", [&] { s.torch = false; });
  options.text("--python", "PATH", s.python);
  if (!options.parse(args)) {
    print_help();
    return false;
  }
  if (s.python.empty()) s.python = default_python();
  return true;
}

// Dense tensor-core FLOPs per SM per clock with bf16 inputs and f32 accumulation, by compute
// capability: NVIDIA's published dense peaks over SMs x clock. sm_80 (A100: 312 TFLOPS, 108 SMs,
// 1.41 GHz) 2048; sm_86 and sm_89 (A40, A6000, L40S, L4) 1024 (GeForce parts halve it with f32
// accumulation); sm_90 (H100 SXM: 989 TFLOPS, 132 SMs, 1.83 GHz) 4096; sm_100 (B200: 2.25 PFLOPS,
// 148 SMs) 8192. 0 for the others: no floor is printed.
double bf16_flops_per_sm_clock(int major, int minor) {
  if (major == 8 && minor == 0) return 2048;
  if (major == 8 && (minor == 6 || minor == 7 || minor == 9)) return 1024;
  if (major == 9) return 4096;
  if (major == 10) return 8192;
  return 0;
}

struct DeviceRoofline {
  std::string name;
  double tensor_flops = 0;  // per second, dense bf16; 0: unknown
  double bandwidth = 0;     // bytes per second
  size_t memory = 0;
};

DeviceRoofline roofline_of([[maybe_unused]] const Device& device) {
  DeviceRoofline r;
#if defined(STRATA_HAVE_CUDA)
  const CudaDeviceInfo info = cuda_context(device).info();
  r.name = cat(device_label(device), ", ", info.name, ", sm_", info.major, info.minor, ", ", info.multiprocessors,
               " SMs at ", info.clock_hz / 1e9, " GHz");
  r.tensor_flops = bf16_flops_per_sm_clock(info.major, info.minor) * info.multiprocessors * info.clock_hz;
  r.bandwidth = info.memory_bandwidth;
  r.memory = info.total_memory;
#endif
  return r;
}

struct Row {
  Precision precision = Precision::f32;
  bool graphs = false;
  int64_t asked = 0, batch = 0;  // the batch asked for, and the one that fit
  double ms = 0;                 // per step
  double images_per_second = 0;
  int64_t peak_allocated = 0, peak_reserved = 0;
  double floor_ms = 0;  // 0: unknown
  double flops = 0, bytes = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One run at `batch`; throws OutOfMemoryError when it does not fit.
Row run_once(const Settings& s, const Device& device, Precision precision, bool graphs, int64_t batch,
             const DeviceRoofline& roofline) {
  const incremental::Task task = bench_task();
  incremental::StepSetup setup = bench_step_setup(task, s.method, s.backbone, batch, s.size, device);
  setup.cuda_graphs = graphs;
  TensorMap previous = bench_step0_weights(setup);
  incremental::StepSession session(setup, task, &previous, "the benchmark's step-0 model", "", s.warmup + s.steps + 1);
  previous.clear();
  Tensor images, labels;
  random_step_batch(batch, s.size, s.size, task.labels().num_classes(), images, labels);
  images = images.to(device);
  labels = labels.to(device);
  for (int i = 0; i < s.warmup; ++i) session.train_iteration(images, labels);
  device.context->synchronize();
  reset_peak_memory(device);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < s.steps; ++i) session.train_iteration(images, labels);
  device.context->synchronize();
  Row row;
  row.precision = precision;
  row.graphs = graphs;
  row.batch = batch;
  row.ms = seconds_since(t0) * 1e3 / s.steps;
  row.images_per_second = static_cast<double>(batch) * 1e3 / row.ms;
  const MemoryStats memory = memory_stats(device);
  row.peak_allocated = memory.peak_allocated_bytes;
  row.peak_reserved = memory.peak_reserved_bytes;
  // The counted work of one step, op by op: the eager step's (a replayed graph runs no op on the host;
  // its work is the same, and its row takes the eager row's floor).
  if (graphs) return row;
  profiler::reset();
  profiler::enable(true);
  session.train_iteration(images, labels);
  device.context->synchronize();
  profiler::enable(false);
  for (const profiler::Entry& e : profiler::report()) {
    row.flops += e.flops;
    row.bytes += e.bytes;
    if (roofline.tensor_flops > 0 && roofline.bandwidth > 0) {
      row.floor_ms += std::max(e.flops / roofline.tensor_flops, e.bytes / roofline.bandwidth) * 1e3;
    }
  }
  profiler::reset();
  return row;
}

// run_once at `batch`, then at 3/4 of it, ... until one fits; nullopt when not even batch 1 does.
std::optional<Row> run(const Settings& s, Precision precision, bool graphs, int64_t batch,
                       const DeviceRoofline& roofline) {
  const Device device = parse_device(s.device, precision);
  for (int64_t b = batch; b >= 1; b = b == 1 ? 0 : std::max<int64_t>(1, b * 3 / 4)) {
    try {
      Row row = run_once(s, device, precision, graphs, b, roofline);
      row.asked = batch;
      return row;
    } catch (const OutOfMemoryError& e) {
      std::printf("  %s, batch %lld: out of memory, retrying smaller\n", precision_name(precision),
                  static_cast<long long>(b));
      std::fflush(stdout);
      empty_cache(device);
    }
  }
  return std::nullopt;
}

// PyTorch's rows (tools/bench_gpu_torch.py), or why there are none.
struct TorchSide {
  std::string note;  // why there are no rows, or the version and device they come from
  json::Value rows;
};

TorchSide run_torch(const Settings& s, const std::vector<Row>& rows) {
  TorchSide side;
  if (!s.torch) {
    side.note = "PyTorch side: skipped (--no-torch)";
    return side;
  }
  if (s.backbone != "resnet50" && s.backbone != "resnet101") {
    side.note =
        cat("PyTorch side: not run (tools/bench_gpu_torch.py builds MiB's ResNet-50 and -101, not ", s.backbone, ")");
    return side;
  }
  const incremental::Task task = bench_task();
  const incremental::StepSetup setup = bench_step_setup(task, s.method, s.backbone, 1, s.size, Device::cpu());
  json::Object input = torch_step_settings(setup, s.warmup + s.steps);
  json::Array runs;
  std::vector<int64_t> batches;
  for (const Row& r : rows) {
    if (std::find(batches.begin(), batches.end(), r.batch) != batches.end()) continue;
    batches.push_back(r.batch);
    runs.emplace_back(json::Object{{"batch", r.batch},
                                   {"modes", json::Array{std::string("f32"), std::string("tf32"),
                                                         std::string("amp_bf16"), std::string("compile")}}});
  }
  input.insert(input.end(), {{"runs", runs},
                             {"height", s.size},
                             {"width", s.size},
                             {"warmup", s.warmup},
                             {"steps", s.steps},
                             {"device", std::string("cuda")}});
  std::printf("Running the PyTorch side (tools/bench_gpu_torch.py)...\n");
  std::fflush(stdout);
  const json::Value out = run_python_json(s.python, "tools/bench_gpu_torch.py", json::Value(input), {});
  if (!out.at("cuda").as_bool()) {
    side.note = cat("PyTorch side: torch ", out.at("torch").as_string(), " (", s.python,
                    ") has no usable CUDA device: strata alone");
    return side;
  }
  side.note = cat("PyTorch side: torch ", out.at("torch").as_string(), " on ", out.at("device").as_string());
  side.rows = out.at("rows");
  return side;
}

// PyTorch's images/s in `mode` at `batch`, or 0 (not run, or failed).
double torch_images(const TorchSide& side, int64_t batch, const std::string& mode) {
  if (!side.rows.is_array()) return 0;
  for (const json::Value& r : side.rows.as_array()) {
    if (r.at("batch").as_int() == batch && r.at("mode").as_string() == mode && r.find("images_per_second")) {
      return r.at("images_per_second").as_double();
    }
  }
  return 0;
}

// `value` with `decimals` digits after the point, then `suffix`.
std::string fixed(double value, int decimals, const char* suffix = "") {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f%s", decimals, value, suffix);
  return text;
}

std::string ratio(double ours, double theirs) { return theirs > 0 ? fixed(ours / theirs, 2) : std::string("-"); }

}  // namespace

int run_bench_gpu(const Args& args) {
  Settings s;
  if (!parse(args, s)) return 0;
  check(std::string(cuda_backend()) != "", kCommand,
        ": this build has no CUDA backend (configure with -DSTRATA_CUDA=ON on a ",
        "machine with the CUDA toolkit, cuBLAS and cuDNN; tools/gpu_check.sh does)");
  const Device probe = parse_device(s.device, s.precisions.front());
  std::printf("%s", emulated_device_warning(probe, s.device).c_str());
  const DeviceRoofline roofline = roofline_of(probe);
  std::printf("device: %s; %.0f MiB; peak dense bf16 tensor %.1f TFLOP/s%s, memory %.0f GB/s\n", roofline.name.c_str(),
              static_cast<double>(roofline.memory) / (1 << 20), roofline.tensor_flops / 1e12,
              roofline.tensor_flops > 0 ? "" : " (unknown architecture: no floor)", roofline.bandwidth / 1e9);
  const incremental::StepSetup described = bench_step_setup(bench_task(), s.method, s.backbone, 1, s.size, probe);
  std::printf("VOC %s step %d, %s; %s; %lldx%lld; %d warm-up + %d timed steps per run\n", kBenchTask, kBenchStep,
              described.method.describe().c_str(), described.model.describe().c_str(), static_cast<long long>(s.size),
              static_cast<long long>(s.size), s.warmup, s.steps);
  std::printf("not built yet, so not measured: --precision bf16\n\n");
  std::fflush(stdout);

  std::vector<Row> rows;
  for (Precision precision : s.precisions) {
    for (int64_t batch : s.batches) {
      for (bool graphs : s.graphs) {
        std::printf("Running strata: %s, %s, batch %lld...\n", precision_name(precision), graphs ? "graph" : "eager",
                    static_cast<long long>(batch));
        std::fflush(stdout);
        std::optional<Row> row = run(s, precision, graphs, batch, roofline);
        if (!row) {
          std::printf("  %s: not even batch 1 fits\n", precision_name(precision));
          continue;
        }
        // A replayed row's work is the eager row's of the same precision and batch.
        for (const Row& eager : rows) {
          if (row->graphs && !eager.graphs && eager.precision == row->precision && eager.batch == row->batch) {
            row->flops = eager.flops;
            row->bytes = eager.bytes;
            row->floor_ms = eager.floor_ms;
          }
        }
        rows.push_back(*row);
        std::printf("  batch %lld: %.1f images/s, %.1f ms/step, peak %s allocated\n",
                    static_cast<long long>(row->batch), row->images_per_second, row->ms,
                    megabytes(row->peak_allocated).c_str());
        std::fflush(stdout);
      }
    }
  }
  const TorchSide torch = run_torch(s, rows);

  std::printf("\n%-6s %-6s %-9s %10s %10s %12s %12s %10s %9s %9s %9s\n", "prec", "step", "batch", "images/s", "ms/step",
              "peak alloc", "peak rsvd", "floor ms", "roofline", "vs torch", "vs AMP");
  for (const Row& r : rows) {
    const std::string batch = r.batch == r.asked ? cat(r.batch) : cat(r.batch, " (", r.asked, ")");
    const double same = torch_images(torch, r.batch, precision_name(r.precision));
    const double amp = torch_images(torch, r.batch, "amp_bf16");
    std::printf("%-6s %-6s %-9s %10.1f %10.1f %12s %12s %10s %9s %9s %9s\n", precision_name(r.precision),
                r.graphs ? "graph" : "eager", batch.c_str(), r.images_per_second, r.ms,
                megabytes(r.peak_allocated).c_str(), megabytes(r.peak_reserved).c_str(),
                r.floor_ms > 0 ? fixed(r.floor_ms, 3).c_str() : "-",
                r.floor_ms > 0 ? fixed(100 * r.floor_ms / r.ms, 2, "%").c_str() : "-",
                ratio(r.images_per_second, same).c_str(), ratio(r.images_per_second, amp).c_str());
  }
  if (torch.rows.is_array()) {
    std::printf("\nPyTorch, same step:\n%-9s %-9s %10s %10s %12s\n", "mode", "batch", "images/s", "ms/step",
                "peak alloc");
    for (const json::Value& r : torch.rows.as_array()) {
      if (r.find("error")) {
        std::printf("%-9s %-9lld %s\n", r.at("mode").as_string().c_str(),
                    static_cast<long long>(r.at("batch").as_int()), r.at("error").as_string().c_str());
        continue;
      }
      std::printf("%-9s %-9lld %10.1f %10.1f %12s\n", r.at("mode").as_string().c_str(),
                  static_cast<long long>(r.at("batch").as_int()), r.at("images_per_second").as_double(),
                  r.at("ms").as_double(), megabytes(r.at("peak_allocated").as_int()).c_str());
    }
  }
  std::printf("\n%s\n", torch.note.c_str());
  std::printf(
      "floor: the step's counted FLOPs and bytes, op by op, at the bf16 tensor peak and the memory bandwidth; "
      "roofline = floor / measured; vs torch = images/s over PyTorch's at the same precision and batch; vs "
      "AMP = over PyTorch eager AMP bf16 (target >= 1.8); step: eager = kernels launched one by one, graph = the "
      "step replayed as a CUDA graph (--no-cuda-graphs in training turns graphs off)\n");
  return 0;
}

}  // namespace strata::app

// The trainer on the CUDA device, end to end: a short step 0 (FT, small model) whose batches come
// through the device prefetcher (the copy stream and pinned staging) starts as the same run on the
// CPU does (within kF32 in strict f32, within kTF32 at --precision tf32), and writes its checkpoint
// and scores; a MiB step 1 stopped mid-epoch and resumed with
// --ckpt ends with the same bits as the uninterrupted run, as on the CPU; and (under the emulator,
// which counts them) one training iteration of every method makes the host wait for the device
// nowhere between the batch's arrival and the end of the optimizer step.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/generate.h"
#include "engine/device_context.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "incremental/checkpoint.h"
#include "incremental/step_session.h"
#include "incremental/trainer.h"
#include "tests/data/temp_dir.h"
#include "tests/incremental/resume_check.h"
#include "tests/support/tolerances.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using namespace strata::incremental;

namespace {

// The loss of every "train" record of a JSONL log (one per iteration with log_interval 1).
std::vector<double> logged_losses(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);) {
    json::Value record = json::parse(line);
    if (record.at("event").as_string() == "train") losses.push_back(record.at("loss").as_double());
  }
  return losses;
}

// A small generated VOC-layout dataset (20 classes: VOC task names apply) under `root`. Scene i is
// the same whatever the count: the first 8 training scenes hold classes of 15-5's step 0 (2
// iterations of batch 4) and 4 of them classes of its step 1 (1 iteration).
void make_dataset(const std::string& root, int train = 24, int val = 8) {
  data::GenerateOptions generate;
  generate.classes = 20;
  generate.train = train;
  generate.val = val;
  generate.size = 48;
  generate.threads = 2;
  data::generate_dataset(root, generate);
}

// A quick run of task 15-5 overlapped with strata's small model at crop 32, batch 4, one epoch.
TrainOptions quick_options(const std::string& data_root, const std::string& output, const std::string& device,
                           const std::string& name) {
  TrainOptions o;
  o.data_root = data_root;
  o.task = "15-5";
  o.protocol = Protocol::overlapped;
  o.backbone = "small";
  o.output_stride = 8;
  o.crop_size = 32;
  o.batch_size = 4;
  o.epochs = {1};
  o.workers = 2;
  o.device = device;
  o.precision = "f32";  // strict on CUDA too: these runs are compared with the CPU's within kF32
  o.name = name;
  o.output = output;
  o.progress = false;
  o.print_tables = false;
  return o;
}

}  // namespace

namespace {

// Step 0 of quick_options on `device` at `precision`, with a loss record per iteration: its result,
// its losses and what it printed.
struct QuickRun {
  StepResult result;
  std::vector<double> losses;
  std::string printed;
};

QuickRun quick_step0(const test::TempDir& dir, const std::string& device, const std::string& precision,
                     const std::string& name) {
  TrainOptions o = quick_options((dir.path() / "data").string(), (dir.path() / "out").string(), device, name);
  o.log_interval = 1;
  o.precision = precision;
  const std::filesystem::path printed = dir.path() / cat("printed_", name, ".txt");
  std::FILE* out = std::fopen(printed.c_str(), "w");
  REQUIRE(out != nullptr);
  QuickRun run;
  {
    Trainer trainer(o, out);
    run.result = trainer.run_step(0);
    run.losses = logged_losses(trainer.log_path());
  }
  std::fclose(out);
  std::ifstream in(printed);
  run.printed = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return run;
}

}  // namespace

// The copy stream's schedules (tests/CMakeLists.txt runs this case under four deferred schedules)
// are a matter of the strict runs; the TF32 one below is its own case.
TEST_CASE("a step 0 trained on cuda starts as the cpu run and completes", "[cpu]") {
  test::TempDir dir("trainer_on_cuda");
  make_dataset((dir.path() / "data").string());
  const QuickRun cpu = quick_step0(dir, "cpu", "f32", "cpu");
  const QuickRun cuda = quick_step0(dir, "cuda", "f32", "cuda");
  // The step's header names the device and the precision it runs at.
  CHECK_THAT(cpu.printed, Catch::Contains(", cpu in f32\n"));
  CHECK_THAT(cuda.printed, Catch::Contains(", cuda:0 (emulated on the CPU) in f32, CUDA graphs\n"));
  REQUIRE(cuda.result.iterations == cpu.result.iterations);
  REQUIRE(cuda.result.iterations >= 3);
  REQUIRE(cuda.losses.size() == static_cast<size_t>(cpu.result.iterations));
  // Iteration 1's loss is a forward of batch 1 with the initial weights; iteration 2's a forward of
  // batch 2 (copied while iteration 1 ran) with the weights of one update. A wrong, late or
  // reordered batch, or a wrong update, moves them far outside kF32. Later iterations are not
  // compared: an update's f32 rounding differences can flip a ReLU or a max-pool choice, and the runs
  // part (measured differences 0, 0, 7e-7, 4e-4, 2e-3 at iterations 1 to 5).
  for (size_t i = 0; i < 2; ++i) {
    INFO("iteration " << i + 1 << ": cpu " << cpu.losses[i] << ", cuda " << cuda.losses[i]);
    CHECK(std::abs(cuda.losses[i] - cpu.losses[i]) <= test::kF32.atol + test::kF32.rtol * std::abs(cpu.losses[i]));
  }
  for (double loss : cuda.losses) CHECK(std::isfinite(loss));
  CHECK(std::filesystem::exists(cuda.result.checkpoint));
  CHECK(cuda.result.peak_memory_bytes > 0);
  CHECK(std::isfinite(cuda.result.scores.mean_iou));
}

// Against the strict CUDA run, which the case above holds within kF32 of the CPU's.
TEST_CASE("at --precision tf32 a step 0 on cuda starts within kTF32 of strict f32, and apart from it", "[cpu]") {
  test::TempDir dir("trainer_on_cuda_tf32");
  make_dataset((dir.path() / "data").string());
  const QuickRun strict = quick_step0(dir, "cuda", "f32", "strict");
  const QuickRun tf32 = quick_step0(dir, "cuda", "tf32", "tf32");
  CHECK_THAT(tf32.printed, Catch::Contains(" in tf32, CUDA graphs\n"));
  // TF32 convolutions move the losses away from strict f32's; iteration 1 (the initial weights) stays
  // within kTF32 of strict f32's. Iteration 2 already carries an update from gradients that went back
  // through every TF32 layer (measured 9e-4 of the loss), so only the first is held to the op
  // tolerance.
  REQUIRE(tf32.losses.size() == strict.losses.size());
  REQUIRE(strict.losses.size() >= 2);
  CHECK(std::abs(tf32.losses[0] - strict.losses[0]) <=
        test::kTF32.atol + test::kTF32.rtol * std::abs(strict.losses[0]));
  for (size_t i = 0; i < 2; ++i) {
    INFO("iteration " << i + 1 << ": cuda f32 " << strict.losses[i] << ", cuda tf32 " << tf32.losses[i]);
    CHECK(tf32.losses[i] != strict.losses[i]);
  }
  for (double loss : tf32.losses) CHECK(std::isfinite(loss));
}

TEST_CASE("a step stopped mid-epoch on cuda and resumed with --ckpt ends with bit-identical weights", "[cpu]") {
  test::TempDir dir("trainer_resume_on_cuda");
  const std::string data_root = (dir.path() / "data").string(), output = (dir.path() / "out").string();
  make_dataset(data_root);
  test::check_resume_is_bit_identical(
      [&](const std::string& name) { return quick_options(data_root, output, "cuda", name); });
}

TEST_CASE(
    "every architecture trains a step 0 and a MiB step 1 on cpu and cuda, and PLOP and ILT steps 1 on cpu: basic "
    "blocks, PSPNet, DeepLabV3+, BiSeNet",
    "[cpu]") {
  test::TempDir dir("trainer_architectures");
  const std::string data_root = (dir.path() / "data").string(), output = (dir.path() / "out").string();
  // 8 training and 4 test scenes: every run still trains (step 0 two iterations, each step 1 one, PLOP's
  // thresholds a pass over its step's data) and evaluates through every layer of its architecture, which
  // is what this case checks; more iterations of the same layers only cost time (under ASan, most of it).
  make_dataset(data_root, 8, 4);
  struct Architecture {
    std::string name, arch, backbone, described;
    int output_stride = 8;
  };
  const std::vector<Architecture> architectures = {
      {"basic", "deeplabv3", "resnet18", "ResNet-10 (blocks 1,1,1,1, width 16)"},
      {"pspnet", "pspnet", "small", "ResNet-14 (blocks 1,1,1,1, width 16)"},
      {"deeplabv3plus", "deeplabv3plus", "resnet50", "ResNet-14 (blocks 1,1,1,1, width 16)"},
      {"bisenet", "bisenet", "resnet18", "ResNet-10 (blocks 1,1,1,1, width 16)", 32}};
  for (const Architecture& a : architectures) {
    for (const std::string device : {"cpu", "cuda"}) {
      INFO(a.name << " on " << device);
      TrainOptions o = quick_options(data_root, output, device, cat(a.name, "-", device, "-step0"));
      o.arch = a.arch;
      o.output_stride = a.output_stride;
      o.backbone = a.backbone;
      o.blocks = {1, 1, 1, 1};
      o.width = 16;
      o.head_channels = 64;
      o.log_interval = 1;
      Trainer step0_trainer(o, nullptr);
      StepResult step0 = step0_trainer.run_step(0);
      // MiB everywhere; PLOP (pseudo-labels, Local POD on the stage pre-activations and the head) and
      // ILT (the backbone output) on the CPU too, so every map a method reads comes from each architecture.
      const std::vector<std::string> methods =
          device == "cpu" ? std::vector<std::string>{"MiB", "PLOP", "ILT"} : std::vector<std::string>{"MiB"};
      for (const std::string& method : methods) {
        INFO(method);
        o.name = cat(a.name, "-", device, "-", method);
        o.method = method;
        o.step = 1;
        o.step_ckpt = step0.checkpoint;
        // Local POD's windows at scale 4 need 4x4 maps: BiSeNet's stage 4 runs at stride 32.
        if (method == "PLOP" && a.output_stride == 32) o.crop_size = 128;
        Trainer step1_trainer(o, nullptr);
        StepResult step1 = step1_trainer.run_step(1);
        CHECK(step1.iterations >= 1);
        for (double loss : logged_losses(step1_trainer.log_path())) CHECK(std::isfinite(loss));
        CHECK(std::isfinite(step1.scores.mean_iou));
        const models::ModelConfig model = load_checkpoint(step1.checkpoint).info.model;
        CHECK(models::architecture_name(model.arch) == a.arch);
        CHECK(model.backbone_name() == a.described);
        CHECK(model.classes == std::vector<int64_t>{16, 5});
        // PSPNet's and BiSeNet's aux heads train with their own term, logged beside the method's.
        std::ifstream log(step1_trainer.log_path());
        const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        CHECK((text.find("\"aux\"") != std::string::npos) == (a.arch == "pspnet" || a.arch == "bisenet"));
      }
    }
  }
}

#if STRATA_CUDA_EMULATION_FOR_TESTS
TEST_CASE("a training iteration on cuda never makes the host wait, for every method", "[cpu]") {
  // DESIGN.md, "One step, one direction": once the batch is on the device, the teacher, the student,
  // the method's losses (label remapping and checks included), backward and SGD are queued without
  // the host waiting once; the loss values come back as device tensors the trainer reads when it logs.
  test::TempDir dir("trainer_no_wait_on_cuda");
  const std::string data_root = (dir.path() / "data").string(), output = (dir.path() / "out").string();
  // The base step only provides step 1's previous checkpoint: the smallest dataset does.
  make_dataset(data_root, 8, 4);
  const StepResult base = Trainer(quick_options(data_root, output, "cuda", "base"), nullptr).run_step(0);
  const Checkpoint previous = load_checkpoint(base.checkpoint);
  // A batch of step 1 of 15-5: old classes as background (0), new classes 16-20, ignored pixels. Two
  // images: whether the host waits does not depend on the batch size, the emulator's time does (batch
  // norm still sees two values per channel at the pooled 1x1 branch).
  std::vector<uint8_t> pixels(2 * 32 * 32 * 3), classes(2 * 32 * 32);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  for (size_t i = 0; i < classes.size(); ++i) {
    const size_t draw = ((i * 2246822519u) >> 7) % 8;
    classes[i] = static_cast<uint8_t>(draw == 0 || draw == 6 ? 0 : draw == 7 ? 255 : 15 + draw);
  }
  const Tensor host_images = Tensor::from_vector(pixels, {2, 32, 32, 3});
  const Tensor host_labels = Tensor::from_vector(classes, {2, 32, 32});

  // EWC, PI and RW penalise with the previous step's importance (RW's fused update and penalty run
  // every part EWC's and PI's do: Fisher EMA, path term, penalty); ones stand for it here, as the
  // FT-trained base has none.
  PreviousMethod importance{{}, "ones"};
  for (const auto& [key, t] : previous.model) {
    for (const char* prefix : {"fisher.", "score."}) importance.state.emplace(prefix + key, Tensor::ones(t.shape()));
  }
  // "LwF knobs": LwF's kd under the LwF ablation log's knobs, fused in calls of its own, and ILT's
  // student starting from the teacher's first two stages.
  for (const std::string name :
       {"FT", "LwF", "LwF-MC", "ILT", "MiB", "EWC", "PI", "RW", "PLOP", "LwF knobs", "MiB knobs", "ILT shared"}) {
    INFO("method " << name);
    const std::string method = name.substr(0, name.find(' '));
    TrainOptions o = quick_options(data_root, output, "cuda", method);
    o.method = method;
    o.step = 1;
    if (name == "LwF knobs") {
      o.method_overrides.kd_temperature = 2.0;
      o.method_overrides.kd_loss = DistillationLoss::l2;
      o.method_overrides.kd_exclude_background = true;
    } else if (name == "MiB knobs") {
      o.method_overrides.kd_temperature = 4.0;
      o.method_overrides.kd_loss = DistillationLoss::kl_divergence;
    } else if (name == "ILT shared") {
      o.method_overrides.share_stages = 2;
    }
    if (method == "PLOP") o.output_stride = 8;  // Local POD's scale 4 needs 4x4 maps: 32 / 8
    Trainer trainer(o, nullptr);
    const StepSetup setup = trainer.setup(1);
    const Device& gpu = setup.device;
    REQUIRE(gpu.is_cuda());
    const Tensor images = host_images.to(gpu), labels = host_labels.to(gpu);
    StepSession session(setup, trainer.task(), &previous.model, base.checkpoint, "", 100, importance);
    if (session.method().needs_pseudo_thresholds(1)) {
      bool given = false;
      session.compute_pseudo_label_thresholds([&]() -> std::optional<ThresholdBatch> {
        if (given) return std::nullopt;
        given = true;
        return ThresholdBatch{images, labels};
      });
    }
    // Warm-up: the caching allocator and the pinned staging buffers then hold what an iteration needs.
    session.train_iteration(images, labels);
    session.train_iteration(images, labels);
    gpu.context->synchronize();
    const uint64_t before = cudaemu::host_synchronization_count();
    const IterationStats stats = session.train_iteration(images, labels);
    CHECK(cudaemu::host_synchronization_count() == before);
    // Reading the values is where the host waits, once per logging interval in the trainer.
    CHECK(std::isfinite(stats.loss.item()));
    CHECK(cudaemu::host_synchronization_count() > before);
  }
}
#endif

// Replay (incremental/replay.h) on the CUDA device: the replayed rows' labels from the teacher's
// logits are the CPU's, pixel for pixel; one iteration of a batch with replayed rows (FT: the teacher
// on those rows alone; MiB: on the whole batch) gives the CPU's loss within kF32; and (under the
// emulator, which counts them) such an iteration makes the host wait for the device nowhere.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "data/generate.h"
#include "engine/device_context.h"
#include "incremental/checkpoint.h"
#include "incremental/replay.h"
#include "incremental/step_session.h"
#include "incremental/trainer.h"
#include "tests/data/temp_dir.h"
#include "tests/incremental/image_set.h"
#include "tests/support/tolerances.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using namespace strata::incremental;

namespace {

// Task 15-5 overlapped with strata's small model at crop 32, batch 4 (2 of them replayed), one epoch.
TrainOptions replay_options(const std::string& data_root, const std::string& output, const std::string& device,
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
  o.precision = "f32";
  o.name = name;
  o.output = output;
  o.progress = false;
  o.print_tables = false;
  return o;
}

}  // namespace

TEST_CASE("replayed rows' teacher labels on cuda are the cpu's, pixel for pixel", "[cpu]") {
  Generator g(3);
  const Tensor low = Tensor::randn({3, 5, 5, 6}, g);
  std::vector<uint8_t> marks(4 * 40 * 40);
  for (size_t i = 0; i < marks.size(); ++i) marks[i] = static_cast<uint8_t>(i % 11 == 0 ? 255 : i % 9);
  const Tensor labels = Tensor::from_vector(marks, {4, 40, 40});
  const Tensor accept_all = Tensor::full({6}, std::numeric_limits<double>::infinity());
  const Tensor cpu = with_replayed_labels(labels, low, accept_all, 9, false);
  const Device gpu = parse_device("cuda", Precision::f32);
  const Tensor cuda = with_replayed_labels(labels.to(gpu), low.to(gpu), accept_all.to(gpu), 9, false);
  REQUIRE(cuda.device().is_cuda());
  CHECK(cuda.to_vector<uint8_t>() == cpu.to_vector<uint8_t>());
  // Row 0 is the step's: copied as it was.
  const std::vector<uint8_t> out = cpu.to_vector<uint8_t>();
  CHECK(std::vector<uint8_t>(out.begin(), out.begin() + 1600) ==
        std::vector<uint8_t>(marks.begin(), marks.begin() + 1600));
}

TEST_CASE("an iteration with replayed rows on cuda gives the cpu's loss and never makes the host wait", "[cpu]") {
  test::TempDir dir("replay_on_cuda");
  const std::string data_root = (dir.path() / "data").string(), output = (dir.path() / "out").string(),
                    set = (dir.path() / "set").string();
  data::GenerateOptions generate;
  generate.classes = 20;
  generate.train = 24;
  generate.val = 8;
  generate.size = 48;
  generate.threads = 2;
  data::generate_dataset(data_root, generate);
  test::write_image_set(data_root, test::step0_images(data_root, "15-5"), set);
  const StepResult base = Trainer(replay_options(data_root, output, "cpu", "base"), nullptr).run_step(0);
  const Checkpoint previous = load_checkpoint(base.checkpoint);
  // A batch of step 1: 2 rows of the step (background, new classes 16-20, void), 2 replayed (marks).
  std::vector<uint8_t> pixels(4 * 32 * 32 * 3), classes(4 * 32 * 32);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  for (size_t i = 0; i < classes.size(); ++i) {
    const size_t draw = ((i * 2246822519u) >> 7) % 8;
    classes[i] = i < 2 * 32 * 32 ? static_cast<uint8_t>(draw == 0 || draw == 6 ? 0
                                                        : draw == 7            ? 255
                                                                               : 15 + draw)
                                 : static_cast<uint8_t>(draw == 7 ? 255 : 0);
  }
  const Tensor images = Tensor::from_vector(pixels, {4, 32, 32, 3}), labels = Tensor::from_vector(classes, {4, 32, 32});
  for (const std::string method : {"FT", "MiB"}) {
    INFO(method);
    auto session_on = [&](const std::string& device) {
      TrainOptions o = replay_options(data_root, output, device, method + "-" + device);
      o.method = method;
      o.step = 1;
      o.replay_images = set;
      o.replay_ratio = 0.5;
      Trainer trainer(o, nullptr);
      const StepSetup setup = trainer.setup(1);
      REQUIRE(setup.replay_rows == 2);
      return std::make_unique<StepSession>(setup, trainer.task(), &previous.model, base.checkpoint, "", 100);
    };
    std::unique_ptr<StepSession> cpu = session_on("cpu"), cuda = session_on("cuda");
    const Device gpu = cuda->model().parameters().front().device();
    REQUIRE(gpu.is_cuda());
    const Tensor gpu_images = images.to(gpu), gpu_labels = labels.to(gpu);
    const double cpu_loss = cpu->train_iteration(images, labels, 2).loss.item();
    const double cuda_loss = cuda->train_iteration(gpu_images, gpu_labels, 2).loss.item();
    INFO("cpu " << cpu_loss << ", cuda " << cuda_loss);
    CHECK(std::abs(cuda_loss - cpu_loss) <= test::kF32.atol + test::kF32.rtol * std::abs(cpu_loss));
#if STRATA_CUDA_EMULATION_FOR_TESTS
    // Warm-up: the caching allocator and the pinned staging buffers then hold what an iteration needs.
    cuda->train_iteration(gpu_images, gpu_labels, 2);
    gpu.context->synchronize();
    const uint64_t before = cudaemu::host_synchronization_count();
    const IterationStats stats = cuda->train_iteration(gpu_images, gpu_labels, 2);
    CHECK(cudaemu::host_synchronization_count() == before);
    CHECK(std::isfinite(stats.loss.item()));
#endif
  }
}

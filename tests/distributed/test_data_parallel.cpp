// Data-parallel training on two ranks (incremental/step_session.h's StepSetup::world, incremental/
// trainer.h's "Data parallelism"): the equivalence, 2 ranks x batch 4 = 1 process x batch 8,
// over three MiB iterations of step 1 with synchronised In-place ABN (losses, gradients after the
// all-reduce, parameters and running statistics, kF32); per-rank norms differ (the test can fail); the
// sharded loader partitions an epoch; and a whole `Trainer` run on two ranks writes one set of files
// whose scores equal one process's.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "data/generate.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/distributed/data_parallel.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "incremental/checkpoint.h"
#include "incremental/replay.h"
#include "incremental/step_session.h"
#include "incremental/trainer.h"
#include "tests/distributed/world.h"
#include "tests/support/compare.h"

using namespace strata;
using namespace strata::incremental;
using strata::testing::world;
namespace fs = std::filesystem;

namespace {

// A generated dataset every rank reads: rank 0 writes it, the others wait.
const std::string& shared_dataset() {
  static const std::string root = [] {
    const std::string folder = (fs::temp_directory_path() / cat("strata_distributed_", ::getppid())).string();
    if (world().rank() == 0) {
      fs::remove_all(folder);
      data::GenerateOptions o;
      o.classes = 4;
      o.train = 48;
      o.val = 12;
      o.size = 40;
      o.band = 0;  // no void pixel: every rank's loss averages the same number of pixels
      o.threads = 1;
      data::generate_dataset(folder, o);
    }
    world().barrier();
    return folder;
  }();
  return root;
}

TrainOptions small_run(const std::string& output) {
  TrainOptions o;
  o.data_root = shared_dataset();
  o.task = "2-2";
  o.protocol = Protocol::overlapped;
  o.method = "MiB";
  o.backbone = "small";
  o.blocks = {1, 1, 1, 1};
  o.width = 8;
  o.head_channels = 16;
  o.crop_size = 32;
  o.batch_size = 8;
  o.epochs = {1};
  // The references' step-0 lr. Two ranks sum in another order than one process, and training
  // amplifies the f32 rounding: at lr 0.05 the first iteration's gradients agree within kF32, the
  // second's already differ by 2.8e-7 (4.6%) on a near-zero gradient. At 0.01 three iterations agree.
  o.lr = {0.01, 0.01};
  o.workers = 1;
  o.output = output;
  o.progress = false;
  o.print_tables = false;
  return o;
}

// Batch `k` of the test: 8 images, labels of step 1 (0 = background, 3 and 4 the new classes).
std::pair<Tensor, Tensor> batch(int k) {
  Generator g(100 + static_cast<uint64_t>(k));
  Tensor images = Tensor::uniform({8, 32, 32, 3}, 0, 255, g).to(DType::u8);
  std::vector<uint8_t> labels;
  for (double v : Tensor::uniform({8, 32, 32}, 0, 3, g).to_vector<double>()) {
    labels.push_back(v < 1 ? 0 : v < 2 ? 3 : 4);
  }
  return {images, Tensor::from_vector(labels, {8, 32, 32})};
}

struct Trained {
  std::vector<double> losses;
  TensorMap state;
  std::vector<Tensor> gradients;
};

// `iterations` iterations of step 1 on rows [first, first + count) of each batch.
Trained train(const StepSetup& setup, const Task& task, const TensorMap& previous, int64_t first, int64_t count,
              int iterations = 3) {
  StepSession session(setup, task, &previous, "step 0 (random)", "", 10);
  Trained out;
  for (int k = 0; k < iterations; ++k) {
    auto [images, labels] = batch(k);
    IterationStats stats =
        session.train_iteration(batch_rows(images, first, first + count), batch_rows(labels, first, first + count));
    out.losses.push_back(stats.loss.item());
  }
  out.state = session.model().state_dict();
  for (const Tensor& p : session.model().parameters()) {
    out.gradients.push_back(p.grad().defined() ? p.grad().to(Device::cpu()) : Tensor());
  }
  for (auto& [name, tensor] : out.state) tensor = tensor.to(Device::cpu());
  return out;
}

// The mean over the ranks of `half`'s losses equals `whole`'s, and so do the averaged gradients and the
// parameters and statistics after the iterations (kF32).
void check_same_training(const Trained& whole, const Trained& half) {
  for (size_t k = 0; k < whole.losses.size(); ++k) {
    Tensor mean = Tensor::from_vector<double>({half.losses[k]}, {1});
    world().all_reduce_sum(mean);
    INFO("iteration " << k + 1);
    CHECK(mean.item() / 2 == Approx(whole.losses[k]).epsilon(1e-5));
  }
  for (size_t i = 0; i < whole.gradients.size(); ++i) {
    INFO("gradient of parameter " << i);
    REQUIRE(whole.gradients[i].defined() == half.gradients[i].defined());
    if (whole.gradients[i].defined()) CHECK_CLOSE(half.gradients[i], whole.gradients[i], test::kF32);
  }
  for (const auto& [name, tensor] : whole.state) {
    INFO(name);
    if (tensor.dtype() == DType::f32) CHECK_CLOSE(half.state.at(name), tensor, test::kF32);
  }
}

}  // namespace

TEST_CASE("2 ranks x batch 4 train as 1 process x batch 8: losses, gradients, parameters, statistics",
          "[distributed]") {
  Trainer trainer(small_run((fs::path(shared_dataset()) / "unused").string()), nullptr);
  StepSetup setup = trainer.setup(1);
  // The step-0 model: the seeded initialisation of the step-0 classes.
  models::ModelConfig step0 = trainer.setup(0).model;
  const TensorMap previous = models::SegmentationModel(step0).state_dict();

  const Trained whole = train(setup, trainer.task(), previous, 0, 8);
  StepSetup parallel = setup;
  parallel.world = &world();
  const int64_t first = 4 * world().rank();
  check_same_training(whole, train(parallel, trainer.task(), previous, first, 4));
  // Each rank's own statistics (--no-sync-bn) train another model: the check above can fail.
  StepSetup unsynchronised = parallel;
  unsynchronised.sync_bn = false;
  const Trained per_rank = train(unsynchronised, trainer.task(), previous, first, 4);
  bool unsynchronised_differs = false;
  for (const auto& [name, tensor] : whole.state) {
    if (tensor.dtype() != DType::f32) continue;
    unsynchronised_differs = unsynchronised_differs || !test::compare(per_rank.state.at(name), tensor, test::kF32).ok;
  }
  CHECK(unsynchronised_differs);
}

TEST_CASE("on emulated CUDA over nccl, 2 ranks x batch 4 train one MiB iteration as 1 process x batch 8",
          "[distributed]") {
  if (std::string(cuda_backend()) != "emulated") return;  // the real backend's test runs on a GPU machine
  Trainer trainer(small_run((fs::path(shared_dataset()) / "unused").string()), nullptr);
  StepSetup setup = trainer.setup(1);
  setup.device = open_cuda_device(0, Precision::f32);
  const TensorMap previous = models::SegmentationModel(trainer.setup(0).model).state_dict();
  std::unique_ptr<distributed::Communicator> nccl = distributed::make_communicator(
      strata::testing::mpi_session(), {.backend = distributed::CommBackend::nccl, .timeout_seconds = 60});
  const Trained whole = train(setup, trainer.task(), previous, 0, 8, 1);
  StepSetup parallel = setup;
  parallel.world = nccl.get();
  check_same_training(whole, train(parallel, trainer.task(), previous, 4 * world().rank(), 4, 1));
}

TEST_CASE("the ranks' shards of an epoch are disjoint and cover the step's images", "[distributed]") {
  const data::Dataset dataset = data::Dataset::voc(shared_dataset(), "train_aug");
  data::LoaderOptions o;
  o.batch_size = 2;
  o.crop_size = 16;
  o.workers = 1;
  o.seed = 5;
  o.subset = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27};
  o.shard = {world().rank(), world().world_size()};
  data::Loader loader(dataset, o);
  std::vector<int64_t> mine;
  loader.start_epoch(1);
  while (std::optional<data::Batch> b = loader.next()) mine.insert(mine.end(), b->indices.begin(), b->indices.end());
  CHECK(mine.size() == 14);
  Tensor all = world().all_gather(Tensor::from_vector(mine, {14}));
  std::vector<int64_t> both = all.to_vector<int64_t>();
  std::set<int64_t> distinct(both.begin(), both.end());
  CHECK(distinct.size() == 28);  // disjoint, and with 28 = 2 x 14 their union is the subset
  CHECK(*distinct.begin() == 0);
  CHECK(*distinct.rbegin() == 27);
  // The same shard again for the same seed and epoch; another order in another epoch.
  data::Loader again(dataset, o);
  CHECK(again.epoch_order(1) == mine);
  CHECK(again.epoch_order(2) != mine);
  // One process with batch 4 sees, batch by batch, the two ranks' rows.
  data::LoaderOptions single = o;
  single.shard = {};
  single.batch_size = 4;
  const std::vector<int64_t> order = data::Loader(dataset, single).epoch_order(1);
  for (size_t i = 0; i < mine.size(); ++i) CHECK(mine[i] == order[2 * i + static_cast<size_t>(world().rank())]);
}

TEST_CASE("a training run on two ranks writes one checkpoint and scores as one process", "[distributed]") {
  const fs::path base = fs::path(shared_dataset()) / "runs";
  TrainOptions o = small_run((base / "parallel").string());
  o.task = "2-2";
  o.step = 0;
  o.batch_size = 4;
  o.epochs = {2};
  Trainer parallel(o, nullptr, &world());
  const std::vector<StepResult> results = parallel.run();
  REQUIRE(results.size() == 1);
  // Every rank has the scores; rank 0 alone wrote the files.
  CHECK(results[0].scores.images > 0);
  CHECK(fs::exists(parallel.checkpoint_path(0)));
  CHECK(fs::exists(parallel.results_path()));
  // The same checkpoint evaluated by one process (rank 0 alone, into its own folder) scores the same.
  if (world().rank() == 0) {
    TrainOptions t = o;
    t.test = true;
    t.ckpt = parallel.checkpoint_path(0);
    t.output = (base / "single").string();
    Trainer single(t, nullptr);
    const std::vector<StepResult> evaluated = single.run();
    CHECK(evaluated[0].scores.mean_iou == results[0].scores.mean_iou);
    CHECK(evaluated[0].scores.images == results[0].scores.images);
  }
  world().barrier();
}

TEST_CASE("a step stopped at an epoch's end on two ranks resumes on one process, mid-epoch it is refused",
          "[distributed]") {
  TrainOptions o = small_run((fs::path(shared_dataset()) / "runs" / "resume").string());
  o.step = 0;
  o.batch_size = 4;
  o.epochs = {2};
  const data::Dataset dataset = data::Dataset::voc(shared_dataset(), "train_aug");
  const Task task = Task::create(dataset, o.task);
  const auto images =
      static_cast<int64_t>(training_images(data::load_label_index(dataset), task, 0, o.protocol).size());
  const int64_t two_rank_epoch = (images + 1) / 2 / 4, one_process_epoch = images / 4;
  o.stop_after = two_rank_epoch;  // the end of epoch 1
  Trainer at_epoch_end(o, nullptr, &world());
  REQUIRE(at_epoch_end.run().at(0).stopped);
  TrainOptions mid = o;
  mid.name = "mid";
  mid.stop_after = two_rank_epoch + 1;
  Trainer inside_epoch(mid, nullptr, &world());
  REQUIRE(inside_epoch.run().at(0).stopped);
  if (world().rank() == 0) {
    TrainOptions one = o;
    one.stop_after = 0;
    one.ckpt = at_epoch_end.checkpoint_path(0);
    Trainer resumed(one, nullptr);
    const StepResult result = resumed.run().at(0);
    CHECK(result.trained);
    CHECK(result.iterations == one_process_epoch);  // epoch 2 alone, in one process's iterations
    CHECK(load_checkpoint(resumed.checkpoint_path(0)).info.complete);
    one.name = "mid";
    one.ckpt = inside_epoch.checkpoint_path(0);
    CHECK_THROWS_WITH(
        Trainer(one, nullptr).run(),
        Catch::Contains("written by 2 data-parallel processes at iteration " + std::to_string(two_rank_epoch + 1)) &&
            Catch::Contains("resume it with 2 processes, or from a checkpoint of an epoch's end"));
  }
  world().barrier();
}

TEST_CASE("gradient buckets start during backward and end as the ranks' mean", "[distributed]") {
  // A chain of four parameters: backward produces the last one's gradient first. Buckets of one
  // parameter each (16 KB cap, 4096 floats per parameter).
  Generator g(7 + static_cast<uint64_t>(world().rank()));
  std::vector<Tensor> parameters;
  for (int i = 0; i < 4; ++i) parameters.push_back(Tensor::randn({4096}, g).set_requires_grad(true));
  distributed::DataParallel parallel(world(), parameters, 16 << 10);
  REQUIRE(parallel.buckets() == 4);
  for (int pass = 0; pass < 2; ++pass) {
    INFO("pass " << pass);
    Tensor x = Tensor::randn({4096}, g);
    for (const Tensor& p : parameters) x = mul(x, p);
    for (Tensor& p : parameters) p.set_grad(Tensor());
    autograd::backward(sum(x), Tensor(), parallel.on_gradient_ready());
    parallel.finish();
    const std::vector<std::string> events = parallel.events();
    const auto at = [&](const std::string& e) { return std::find(events.begin(), events.end(), e) - events.begin(); };
    CAPTURE(events);
    CHECK(events.size() == 9);
    // Bucket 0 (the last parameter) started before backward had finished.
    CHECK(at("bucket 0 started") < at("backward done"));
    CHECK(at("bucket 3 started") < at("bucket 3 done"));
  }
  // The mean itself: a pass without the hook, gradients compared with an explicit all-reduce.
  Tensor x = Tensor::randn({4096}, g);
  for (const Tensor& p : parameters) x = mul(x, p);
  for (Tensor& p : parameters) p.set_grad(Tensor());
  sum(x).backward();
  std::vector<Tensor> expected;
  for (const Tensor& p : parameters) {
    Tensor e = p.grad().clone();
    world().all_reduce_sum(e);
    expected.push_back(scale(e, 0.5));
  }
  parallel.average_gradients();
  for (size_t i = 0; i < parameters.size(); ++i) CHECK_CLOSE(parameters[i].grad(), expected[i], test::kF32);
}

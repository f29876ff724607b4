// The trainer on the CUDA device, end to end: a short step 0 (FT, small model) whose batches come
// through the device prefetcher (the copy stream and pinned staging) starts as the same run on the
// CPU does, and writes its checkpoint and scores.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/generate.h"
#include "engine/json.h"
#include "incremental/trainer.h"
#include "tests/data/temp_dir.h"
#include "tests/support/tolerances.h"

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

}  // namespace

TEST_CASE("a step 0 trained on cuda starts as the cpu run and completes", "[cpu]") {
  test::TempDir dir("trainer_on_cuda");
  data::GenerateOptions generate;
  generate.classes = 20;
  generate.train = 24;
  generate.val = 8;
  generate.size = 48;
  generate.threads = 2;
  data::generate_dataset((dir.path() / "data").string(), generate);

  std::vector<double> losses[2];
  StepResult results[2];
  const char* devices[2] = {"cpu", "cuda"};
  for (int d = 0; d < 2; ++d) {
    TrainOptions o;
    o.data_root = (dir.path() / "data").string();
    o.task = "15-5";
    o.protocol = Protocol::overlapped;
    o.backbone = "small";
    o.output_stride = 8;
    o.crop_size = 32;
    o.batch_size = 4;
    o.epochs = {1};
    o.workers = 2;
    o.log_interval = 1;
    o.device = devices[d];
    o.name = devices[d];
    o.output = (dir.path() / "out").string();
    o.progress = false;
    o.print_tables = false;
    Trainer trainer(o, nullptr);
    results[d] = trainer.run_step(0);
    losses[d] = logged_losses(trainer.log_path());
  }
  REQUIRE(results[1].iterations == results[0].iterations);
  REQUIRE(results[1].iterations >= 3);
  REQUIRE(losses[1].size() == static_cast<size_t>(results[0].iterations));
  // Iteration 1's loss is a forward of batch 1 with the initial weights; iteration 2's a forward of
  // batch 2 (copied while iteration 1 ran) with the weights of one update. A wrong, late or
  // reordered batch, or a wrong update, moves them far outside kF32. Later iterations are not
  // compared: an update's f32 rounding differences can flip a ReLU or a max-pool choice, and the runs
  // part (measured differences 0, 0, 7e-7, 4e-4, 2e-3 at iterations 1 to 5).
  for (size_t i = 0; i < 2; ++i) {
    INFO("iteration " << i + 1 << ": cpu " << losses[0][i] << ", cuda " << losses[1][i]);
    CHECK(std::abs(losses[1][i] - losses[0][i]) <= test::kF32.atol + test::kF32.rtol * std::abs(losses[0][i]));
  }
  for (double loss : losses[1]) CHECK(std::isfinite(loss));
  CHECK(std::filesystem::exists(results[1].checkpoint));
  CHECK(results[1].peak_memory_bytes > 0);
  CHECK(std::isfinite(results[1].scores.mean_iou));
}

// The loader's replayed rows (data/loader.h, LoaderOptions::replay; the trainer's --replay-images):
// every batch ends with `rows` images of the replayed set, through the train transform, labelled
// with the void mark only; the set cycles in shuffled orders, each sample once per cycle; a batch's
// replayed rows depend on (seed, epoch, batch) only, so an epoch started mid-way and any worker
// count give the same bytes; the epoch's length stays that of the subset; bad options are errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/generate.h"
#include "data/loader.h"
#include "engine/error.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using namespace strata::data;

namespace {

// Two generated sets: the step's (26 images) and the replayed one (7 images, another seed).
const std::string& own_root() {
  static test::TempDir dir("replay_loader_own");
  static bool made = [] {
    GenerateOptions o;
    o.classes = 5;
    o.train = 26;
    o.val = 2;
    o.size = 48;
    o.seed = 3;
    o.threads = 2;
    generate_dataset(dir.str(), o);
    return true;
  }();
  (void)made;
  static const std::string root = dir.str();
  return root;
}

const std::string& replay_root() {
  static test::TempDir dir("replay_loader_set");
  static bool made = [] {
    GenerateOptions o;
    o.classes = 5;
    o.train = 7;
    o.val = 1;
    o.size = 48;
    o.seed = 4;
    o.threads = 2;
    generate_dataset(dir.str(), o);
    return true;
  }();
  (void)made;
  static const std::string root = dir.str();
  return root;
}

LoaderOptions replay_options(int workers) {
  LoaderOptions o;
  o.batch_size = 3;
  o.crop_size = 32;
  o.workers = workers;
  o.prefetch = 2;
  o.seed = 77;
  o.replay = LoaderOptions::Replay{Dataset::voc(replay_root(), "train_aug"), 2};
  return o;
}

std::vector<Batch> batches_from(Loader& loader, int64_t epoch, int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> out;
  while (std::optional<Batch> b = loader.next()) out.push_back(std::move(*b));
  return out;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<uint8_t>() == b.to_vector<uint8_t>();
}

}  // namespace

TEST_CASE("replay loader: every batch ends with the replayed rows, labelled with the void mark only", "[cpu]") {
  const Dataset own = Dataset::voc(own_root(), "train_aug");
  Loader loader(own, replay_options(2));
  // The epoch is one pass over the 26 own images, 3 per batch (drop_last): 8 batches.
  CHECK(loader.batches_per_epoch() == 8);
  const std::vector<Batch> batches = batches_from(loader, 0);
  REQUIRE(batches.size() == 8);
  const std::vector<int64_t> order = loader.epoch_order(0);
  bool void_seen = false;
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    INFO("batch " << b);
    CHECK(batch.images.shape() == Shape{5, 32, 32, 3});
    CHECK(batch.labels.shape() == Shape{5, 32, 32});
    CHECK(batch.replayed == 2);
    REQUIRE(batch.indices.size() == 5);
    for (int64_t row = 0; row < 3; ++row) CHECK(batch.indices[row] == order[b * 3 + row]);
    const std::vector<uint8_t> labels = batch.labels.to_vector<uint8_t>();
    for (size_t i = 3 * 32 * 32; i < labels.size(); ++i) {
      CHECK((labels[i] == 0 || labels[i] == 255));
      void_seen = void_seen || labels[i] == 255;
    }
  }
  // The generated set's void band around objects survives the crop in some replayed row.
  CHECK(void_seen);
}

TEST_CASE("replay loader: the set cycles in shuffled orders, each sample once per cycle", "[cpu]") {
  const Dataset own = Dataset::voc(own_root(), "train_aug");
  Loader loader(own, replay_options(2));
  std::vector<int64_t> stream;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    for (const Batch& batch : batches_from(loader, epoch)) {
      stream.insert(stream.end(), batch.indices.end() - batch.replayed, batch.indices.end());
    }
  }
  // 2 epochs x 8 batches x 2 rows = 32 positions: cycles 0..3 of the 7 images and the start of cycle 4.
  REQUIRE(stream.size() == 32);
  for (int64_t cycle = 0; cycle < 4; ++cycle) {
    const std::vector<int64_t> part(stream.begin() + cycle * 7, stream.begin() + (cycle + 1) * 7);
    CHECK(part == loader.replay_order(cycle));
    CHECK(std::set<int64_t>(part.begin(), part.end()).size() == 7);
  }
  CHECK(loader.replay_order(0) != loader.replay_order(1));
}

TEST_CASE("replay loader: the same batches with 1 and 3 workers, and from a batch mid-epoch", "[cpu]") {
  const Dataset own = Dataset::voc(own_root(), "train_aug");
  Loader one(own, replay_options(1)), three(own, replay_options(3));
  const std::vector<Batch> a = batches_from(one, 1), b = batches_from(three, 1);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("batch " << i);
    CHECK(a[i].indices == b[i].indices);
    CHECK(same_bytes(a[i].images, b[i].images));
    CHECK(same_bytes(a[i].labels, b[i].labels));
  }
  // Epoch 1 started at batch 5 (a resumed step) is the whole epoch's tail, replayed rows included.
  const std::vector<Batch> tail = batches_from(three, 1, 5);
  REQUIRE(tail.size() == a.size() - 5);
  for (size_t i = 0; i < tail.size(); ++i) {
    INFO("batch " << i + 5);
    CHECK(tail[i].number == a[i + 5].number);
    CHECK(tail[i].indices == a[i + 5].indices);
    CHECK(same_bytes(tail[i].images, a[i + 5].images));
    CHECK(same_bytes(tail[i].labels, a[i + 5].labels));
  }
  // Another epoch draws other crops of the replayed set: the rows are not a fixed copy.
  const std::vector<Batch> epoch0 = batches_from(three, 0);
  CHECK_FALSE(same_bytes(epoch0[0].images, a[0].images));
}

TEST_CASE("replay loader: outside train mode with drop_last, or no rows, is an error", "[cpu]") {
  const Dataset own = Dataset::voc(own_root(), "train_aug");
  LoaderOptions o = replay_options(1);
  o.drop_last = false;
  CHECK_THROWS_WITH(Loader(own, o), Catch::Contains("train mode with drop_last"));
  o = replay_options(1);
  o.mode = LoaderMode::eval;
  CHECK_THROWS_WITH(Loader(own, o), Catch::Contains("train mode with drop_last"));
  o = replay_options(1);
  o.replay->rows = 0;
  CHECK_THROWS_WITH(Loader(own, o), Catch::Contains("replay rows must be >= 1, got 0"));
  CHECK_THROWS_WITH(Loader(own, LoaderOptions{}).replay_order(0), Catch::Contains("replays no set"));
}

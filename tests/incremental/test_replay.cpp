// Replay of a generated image set (incremental/replay.h, the trainer's --replay-images and
// --replay-ratio): the replayed rows per batch; their labels, the teacher's argmax over the old
// channels (which are the student's first channels: old classes keep their meaning) with void kept
// and the step's own rows untouched; an iteration with replayed rows is the iteration given those
// labels, for a method without a teacher of its own (FT: the teacher runs on the replayed rows) and
// one with (MiB); the options' errors; a resumed replay step ends bit-identical, and a resume under
// another set or ratio is refused naming both; what the checkpoint and the log record; and the effect:
// replaying images of the old classes keeps more of them than the same step without replay.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "data/generate.h"
#include "data/label_index.h"
#include "data/loader.h"
#include "engine/json.h"
#include "engine/ops/argmax.h"
#include "engine/ops/normalize.h"
#include "engine/ops/upsample.h"
#include "incremental/checkpoint.h"
#include "incremental/options.h"
#include "incremental/replay.h"
#include "incremental/step_session.h"
#include "incremental/teacher.h"
#include "incremental/trainer.h"
#include "models/segmentation_model.h"
#include "tests/data/temp_dir.h"
#include "tests/incremental/image_set.h"
#include "tests/incremental/resume_check.h"

using namespace strata;
using namespace strata::incremental;
namespace fs = std::filesystem;
using test::step0_images;
using test::write_image_set;

namespace {

// A generated VOC-layout dataset of 20 classes (VOC task names apply).
void make_dataset(const std::string& root, uint64_t seed, int train, int size) {
  data::GenerateOptions o;
  o.classes = 20;
  o.train = train;
  o.val = 40;
  o.size = size;
  o.seed = seed;
  o.threads = 2;
  data::generate_dataset(root, o);
}

const std::string& shared_dataset() {
  static test::TempDir dir("replay_data");
  static const bool made = (make_dataset(dir.str(), 11, 100, 48), true);
  (void)made;
  static const std::string root = dir.str();
  return root;
}

// The replayed set of the quick runs: 24 step-0 training images of 15-5 (overlapped).
const std::string& shared_replay_set() {
  static test::TempDir dir("replay_set");
  static const bool made = [] {
    std::vector<int64_t> images = step0_images(shared_dataset(), "15-5");
    images.resize(std::min<size_t>(images.size(), 24));
    write_image_set(shared_dataset(), images, dir.str());
    return true;
  }();
  (void)made;
  static const std::string root = dir.str();
  return root;
}

// A quick run of task 15-5 overlapped: strata's small model at output stride 8, crop 32, batch 8,
// one epoch.
TrainOptions quick_options(const std::string& output, const std::string& name) {
  TrainOptions o;
  o.data_root = shared_dataset();
  o.task = "15-5";
  o.protocol = Protocol::overlapped;
  o.backbone = "small";
  o.output_stride = 8;
  o.crop_size = 32;
  o.batch_size = 8;
  o.epochs = {1};
  o.seed = 7;
  o.workers = 2;
  o.output = output;
  o.name = name;
  o.progress = false;
  o.print_tables = false;
  return o;
}

// The step-0 checkpoint of the quick runs, trained once.
const std::string& shared_step0() {
  static test::TempDir out("replay_step0");
  static const std::string path = Trainer(quick_options(out.str(), "step0"), nullptr).run_step(0).checkpoint;
  return path;
}

TrainOptions replay_step1(const std::string& output, const std::string& name, const std::string& method) {
  TrainOptions o = quick_options(output, name);
  o.method = method;
  o.step = 1;
  o.step_ckpt = shared_step0();
  o.replay_images = shared_replay_set();
  o.replay_ratio = 0.25;
  return o;
}

std::vector<json::Value> log_records(const std::string& path, const std::string& event) {
  std::ifstream in(path);
  std::vector<json::Value> out;
  for (std::string line; std::getline(in, line);) {
    json::Value record = json::parse(line);
    if (record.at("event").as_string() == event) out.push_back(record);
  }
  return out;
}

}  // namespace

TEST_CASE("replay rows are round(R x B) within 1 and B - 1, and bad ratios and batches name the option", "[cpu]") {
  CHECK(replay_rows(0.5, 24) == 12);
  CHECK(replay_rows(0.25, 8) == 2);
  CHECK(replay_rows(0.3, 8) == 2);   // 2.4
  CHECK(replay_rows(0.01, 8) == 1);  // at least one replayed image
  CHECK(replay_rows(0.99, 8) == 7);  // at least one image of the step
  CHECK(replay_rows(0.5, 2) == 1);
  for (double ratio : {0.0, 1.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_WITH(replay_rows(ratio, 8), Catch::Contains("--replay-ratio must be in (0, 1)"));
  }
  CHECK_THROWS_WITH(replay_rows(0.5, 1), Catch::Contains("--replay-images needs --batch-size >= 2"));
}

TEST_CASE("replayed rows take the teacher's argmax over the old channels, void kept, the step's rows untouched",
          "[cpu]") {
  // A permuted order: step 0 learns raw classes 4 and 2 (channels 1, 2), step 1 raw 1 and 3. The
  // student's first C_old channels are the teacher's, class for class, so teacher channel c is
  // training label c and means the same class at step 1.
  const Task task = Task::from_class_lists(LabelSpace::numbered(6), {{0, 4, 2}, {1, 3}});
  const std::vector<int> old_order = task.channel_order(0), order = task.channel_order(1);
  REQUIRE(order.size() == 5);
  CHECK(std::vector<int>(order.begin(), order.begin() + task.old_channels(1)) == old_order);

  models::ModelConfig config = models::small_model_config({3}, 8);
  config.seed = 5;
  Teacher teacher(std::make_shared<models::SegmentationModel>(config));
  std::vector<uint8_t> pixels(4 * 32 * 32 * 3), marks(4 * 32 * 32);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 11);
  for (size_t i = 0; i < marks.size(); ++i) {
    const size_t row = i / (32 * 32), y = (i / 32) % 32;
    // Rows 0-1: the step's labels (channels 0..4, void); rows 2-3 replayed: a void band, else 0.
    marks[i] =
        row < 2 ? static_cast<uint8_t>(i % 7 == 6 ? 255 : i % 5) : static_cast<uint8_t>(y >= 12 && y < 15 ? 255 : 0);
  }
  const Tensor images = Tensor::from_vector(pixels, {4, 32, 32, 3}), labels = Tensor::from_vector(marks, {4, 32, 32});
  models::ForwardOptions logits_only;
  logits_only.upsample = false;
  logits_only.low_res_logits = true;
  const Tensor low = teacher.run(normalize_image(images), logits_only).low_res_logits;
  REQUIRE(low.shape() == Shape{4, 4, 4, 3});
  const Tensor accept_all = Tensor::full({3}, std::numeric_limits<double>::infinity());
  const Tensor out =
      with_replayed_labels(labels, batch_rows(low, 2, 4), accept_all, task.num_channels(1), config.align_corners());
  REQUIRE(out.shape() == labels.shape());
  REQUIRE(out.dtype() == DType::u8);
  // The reference: the argmax of the logits upsampled to the crop.
  const std::vector<int64_t> argmax_full = argmax(upsample_bilinear(low, 32, 32, false)).to_vector<int64_t>();
  const std::vector<uint8_t> got = out.to_vector<uint8_t>();
  std::set<int64_t> classes;
  int64_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool replayed = i >= 2 * 32 * 32;
    const int64_t expected = !replayed || marks[i] == 255 ? marks[i] : argmax_full[i];
    wrong += got[i] == expected ? 0 : 1;
    if (replayed && marks[i] != 255) classes.insert(got[i]);
  }
  CHECK(wrong == 0);
  // The teacher's verdicts vary over the pixels (the check above is not about a constant map), and
  // name only old channels.
  CHECK(classes.size() >= 2);
  CHECK(*classes.rbegin() < 3);
  // The input labels are left as they were.
  CHECK(labels.to_vector<uint8_t>() == marks);
}

TEST_CASE("an iteration with replayed rows trains as one given the teacher's labels for them, with FT and MiB",
          "[cpu]") {
  test::TempDir out("replay_iteration");
  Checkpoint previous = load_checkpoint(shared_step0());
  // A step-0 model of one epoch calls every pixel background; a random classifier of larger weights
  // makes its verdicts vary over the pixels, so that the labels below are not all background.
  Generator g(17);
  for (const char* key : {"cls.0.weight", "cls.0.bias"}) {
    REQUIRE(previous.model.count(key) == 1);
    previous.model.at(key) = Tensor::randn(previous.model.at(key).shape(), g);
  }
  // A batch of step 1 as the trainer's loader makes it: 6 images of the step (labels through its
  // training table), then 2 of the replayed set (marks only: void, else 0).
  const data::Dataset own = data::Dataset::voc(shared_dataset(), "train_aug");
  const Task task = Task::create(own, "15-5");
  data::LoaderOptions loading;
  loading.batch_size = 6;
  loading.crop_size = 32;
  loading.workers = 2;
  loading.seed = 3;
  loading.subset = training_images(data::load_label_index(own), task, 1, Protocol::overlapped);
  loading.label_map = training_label_table(task, 1, Convention::plop);
  loading.replay = data::LoaderOptions::Replay{data::Dataset::voc(shared_replay_set(), "train"), 2};
  data::Loader loader(own, loading);
  loader.start_epoch(0);
  const data::Batch batch = *loader.next();
  REQUIRE(batch.replayed == 2);
  const Tensor images = batch.images, marks = batch.labels;
  for (const std::string method : {"FT", "MiB"}) {
    INFO(method);
    Trainer trainer(replay_step1(out.str(), method, method), nullptr);
    const StepSetup setup = trainer.setup(1);
    REQUIRE(setup.replay);
    REQUIRE(setup.replay_rows == 2);
    StepSession replaying(setup, trainer.task(), &previous.model, shared_step0(), "", 10);
    StepSession given(setup, trainer.task(), &previous.model, shared_step0(), "", 10);
    // FT reads no teacher but replay loads one.
    REQUIRE(replaying.teacher() != nullptr);
    const IterationStats a = replaying.train_iteration(images, marks, 2);

    // The labels the session computes: the teacher's on the replayed rows (FT runs it on them alone,
    // MiB on the whole batch for its distillation).
    models::ForwardOptions maps = replaying.method().forward_options(1);
    maps.low_res_logits = true;
    models::ForwardOptions logits_only;
    logits_only.upsample = false;
    logits_only.low_res_logits = true;
    const bool whole = method == "MiB";
    const Tensor x = normalize_image(images);
    const Tensor low = given.teacher()->run(whole ? x : batch_rows(x, 6, 8), whole ? maps : logits_only).low_res_logits;
    const Tensor labels = with_replayed_labels(marks, whole ? batch_rows(low, 6, 8) : low,
                                               Tensor::full({16}, std::numeric_limits<double>::infinity()), 21, false);
    // The teacher names old classes on the replayed images (the test below is not about background).
    const std::vector<uint8_t> replayed_labels = batch_rows(labels, 6, 8).to_vector<uint8_t>();
    CHECK(std::count_if(replayed_labels.begin(), replayed_labels.end(), [](uint8_t v) { return v >= 1 && v < 16; }) >
          0);
    const IterationStats b = given.train_iteration(images, labels, 0);
    CHECK(a.loss.item() == b.loss.item());
    const TensorMap after = given.model().state_dict();
    for (const auto& [name, tensor] : replaying.model().state_dict()) {
      INFO(name);
      CHECK(tensor.to_vector<float>() == after.at(name).to_vector<float>());
    }
    // The marks alone (the replayed rows as background) give another loss under FT: the labels were
    // replaced. MiB's unbiased CE counts an old-class label as background (its sum over the old
    // channels), so there the loss is the same and replay acts through the distillation alone.
    StepSession marks_only(setup, trainer.task(), &previous.model, shared_step0(), "", 10);
    const double background_loss = marks_only.train_iteration(images, marks, 0).loss.item();
    if (method == "FT") {
      CHECK(background_loss != a.loss.item());
    } else {
      CHECK(background_loss == a.loss.item());
    }
  }
}

TEST_CASE("replay options: aliases, the ratio's range, step 0, a missing, unlisted or empty set name the option",
          "[cpu]") {
  for (const std::string name : {"--replay-images", "--deepinversion-images", "--deepinversion_images"}) {
    TrainOptions o;
    REQUIRE(parse_train_options({name, "/data/di"}, o));
    CHECK(o.replay_images == "/data/di");
  }
  TrainOptions parsed;
  REQUIRE(parse_train_options({"--replay-ratio", "0.25"}, parsed));
  CHECK(parsed.replay_ratio == 0.25);
  for (const std::string bad : {"0", "1", "-0.2", "1.5"}) {
    TrainOptions o;
    CHECK_THROWS_WITH(parse_train_options({"--replay-ratio", bad}, o),
                      Catch::Contains("--replay-ratio must be in (0, 1)") && Catch::Contains(bad));
  }
  CHECK_THAT(train_options_help(), Catch::Contains("--replay-images DIR") && Catch::Contains("--replay-ratio R") &&
                                       Catch::Contains("--deepinversion_images DIR"));
  for (const OptionSpec& spec : train_option_specs()) {
    if (std::string(spec.name) == "--replay-ratio")
      CHECK_THAT(spec.help, Catch::Contains("at least 1 and at most B - 1"));
  }

  test::TempDir out("replay_errors");
  auto refused = [&](TrainOptions o) {
    try {
      Trainer trainer(o, nullptr);
      trainer.run();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  TrainOptions o = replay_step1(out.str(), "errors", "FT");
  o.step = 0;
  CHECK_THAT(refused(o), Catch::Contains("--replay-images") && Catch::Contains("step 0 has no old classes"));
  o.all_steps = true;
  CHECK_THAT(refused(o), Catch::Contains("step 0 has no old classes") && Catch::Contains("--step all"));
  o = replay_step1(out.str(), "errors", "FT");
  o.replay_images = out / "missing";
  CHECK_THAT(refused(o), Catch::Contains("--replay-images " + (out / "missing")) && Catch::Contains("no such folder"));
  o.replay_images = out.str();  // a folder, but no splits/train.txt
  CHECK_THAT(refused(o), Catch::Contains("--replay-images") && Catch::Contains("cannot open it as an image set"));
  fs::create_directories(out.path() / "empty" / "splits");
  std::ofstream(out.path() / "empty" / "splits" / "train.txt").flush();
  o.replay_images = out / "empty";
  CHECK_THAT(refused(o), Catch::Contains("--replay-images") && Catch::Contains("no samples in splits/train.txt"));
  // A listed image that is not there: named when the set is opened.
  fs::create_directories(out.path() / "unlisted" / "splits");
  std::ofstream(out.path() / "unlisted" / "splits" / "train.txt")
      << "/JPEGImages/gone.jpg /SegmentationClassAug/gone.png\n";
  o.replay_images = out / "unlisted";
  CHECK_THAT(refused(o), Catch::Contains("--replay-images") && Catch::Contains("gone.jpg"));
  o = replay_step1(out.str(), "errors", "FT");
  o.replay_ratio = 1.0;
  CHECK_THAT(refused(o), Catch::Contains("--replay-ratio must be in (0, 1)"));
  o = replay_step1(out.str(), "errors", "FT");
  o.batch_size = 1;
  CHECK_THAT(refused(o), Catch::Contains("--batch-size >= 2"));
  o = quick_options(out.str(), "errors");
  o.replay_ratio = 0.5;
  CHECK_THAT(refused(o), Catch::Contains("--replay-ratio 0.5 without --replay-images"));
  // A session not set up for replay refuses replayed rows.
  Trainer plain(quick_options(out.str(), "plain"), nullptr);
  const Checkpoint previous = load_checkpoint(shared_step0());
  TrainOptions step1 = quick_options(out.str(), "plain");
  step1.step = 1;
  step1.method = "MiB";
  Trainer mib(step1, nullptr);
  StepSession session(mib.setup(1), mib.task(), &previous.model, shared_step0(), "", 10);
  CHECK_THROWS_WITH(
      session.train_iteration(Tensor::zeros({4, 32, 32, 3}, DType::u8), Tensor::zeros({4, 32, 32}, DType::u8), 2),
      Catch::Contains("2 replayed rows in a batch of 4") && Catch::Contains("StepSetup::replay"));
}

TEST_CASE("a replay step stopped mid-epoch and resumed with --ckpt ends with bit-identical weights", "[cpu]") {
  test::TempDir out("replay_resume");
  test::check_resume_is_bit_identical([&](const std::string& name) { return quick_options(out.str(), name); }, "MiB",
                                      false,
                                      [](TrainOptions& o) {
                                        o.replay_images = shared_replay_set();
                                        o.replay_ratio = 0.25;
                                      });
}

TEST_CASE("a replay step records its set and ratio, and a resume under another set or ratio is refused naming both",
          "[cpu]") {
  test::TempDir out("replay_refused");
  TrainOptions o = replay_step1(out.str(), "stopped", "FT");
  o.stop_after = 1;
  Trainer trainer(o, nullptr);
  const StepResult stopped = trainer.run_step(1);
  REQUIRE(stopped.stopped);
  const std::string folder = fs::weakly_canonical(shared_replay_set()).string();
  const Checkpoint checkpoint = load_checkpoint(stopped.checkpoint);
  CHECK(checkpoint.info.replay_images == folder);
  CHECK(checkpoint.info.replay_ratio == 0.25);
  CHECK(checkpoint.info.replay_rows == 2);
  // An epoch is one pass over the step's own images, 6 per batch.
  CHECK(checkpoint.info.iterations_per_epoch == stopped.training_images / 6);
  const std::vector<json::Value> runs = log_records(trainer.log_path(), "run");
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].at("replay_images").as_string() == folder);
  CHECK(runs[0].at("replay_ratio").as_double() == 0.25);
  const std::vector<json::Value> starts = log_records(trainer.log_path(), "step_start");
  REQUIRE(starts.size() == 1);
  CHECK(starts[0].at("replayed_per_batch").as_double() == 2);
  CHECK(starts[0].at("teacher").as_bool());

  test::TempDir other("replay_other_set");
  write_image_set(shared_dataset(), step0_images(shared_dataset(), "15-5"), other.str());
  const std::string other_folder = fs::weakly_canonical(other.str()).string();
  auto resume = [&](const std::function<void(TrainOptions&)>& change) {
    TrainOptions r = replay_step1(out.str(), "stopped", "FT");
    r.ckpt = stopped.checkpoint;
    change(r);
    try {
      Trainer(r, nullptr).run_step(1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(
      resume([&](TrainOptions& r) { r.replay_images = other.str(); }),
      Catch::Contains("replayed image set (--replay-images) is " + folder + " but this run's is " + other_folder));
  CHECK_THAT(resume([](TrainOptions& r) { r.replay_ratio = 0.5; }),
             Catch::Contains("replay ratio (--replay-ratio) is 0.25 but this run's is 0.5"));
  CHECK_THAT(resume([](TrainOptions& r) {
               r.replay_images.clear();
               r.replay_ratio.reset();
             }),
             Catch::Contains("replayed image set (--replay-images) is " + folder + " but this run's is none"));
}

// ---- the effect -----------------------------------------------------------------------------------

namespace {

struct ReplayEffect {
  StepResult step0, without, with;
};

// Task 2-2 (overlapped) on a generated dataset of 4 classes and `seed`: step 0 learns classes 1-2,
// then step 1 (classes 3-4) with FT from the same checkpoint, without and with replay of step 0's
// training images (ratio 0.5). Small: 40 training images of about 36 pixels, crop 32, batch 8.
ReplayEffect run_replay_effect(uint64_t seed) {
  test::TempDir data("replay_effect_data"), out("replay_effect"), set("replay_effect_set");
  data::GenerateOptions generate;
  generate.classes = 4;
  generate.train = 40;
  generate.val = 20;
  generate.size = 36;
  generate.seed = seed;
  generate.threads = 2;
  data::generate_dataset(data.str(), generate);
  write_image_set(data.str(), step0_images(data.str(), "2-2"), set.str());
  TrainOptions base = quick_options(out.str(), "step0");
  base.data_root = data.str();
  base.task = "2-2";
  base.seed = seed;
  base.epochs = {8, 3};
  base.lr = {0.05, 0.05};
  ReplayEffect r;
  r.step0 = Trainer(base, nullptr).run_step(0);
  for (const bool replay : {false, true}) {
    TrainOptions o = base;
    o.name = replay ? "replay" : "plain";
    o.step = 1;
    o.step_ckpt = r.step0.checkpoint;
    if (replay) {
      o.replay_images = set.str();
      o.replay_ratio = 0.5;
    }
    (replay ? r.with : r.without) = Trainer(o, nullptr).run_step(1);
  }
  std::printf("replay effect, seed %llu: step 0 old %.3f | FT old %.3f new %.3f | FT + replay old %.3f new %.3f\n",
              static_cast<unsigned long long>(seed), r.step0.means.old_without_background,
              r.without.means.old_without_background, r.without.means.new_without_background,
              r.with.means.old_without_background, r.with.means.new_without_background);
  return r;
}

// The old-class mIoU (background excluded) FT keeps with replay minus without it, asserted with these
// settings. Measured (this file's cases print it; dataset and training seed s): s = 1 (the [cpu] case)
// 0.306; s = 2..10 (the [slow] case) 0.219, 0.487, 0.448, 0.531, 0.277, 0.311, 0.297, 0.275, 0.111.
// FT alone keeps 0.000 of step 0's 0.40-0.79 (0.030 at s = 10), FT with replay 0.14-0.53; three
// epochs of step 1 teach neither the new classes measurably (0.000), so only the old ones are
// compared. 0.05 is asserted: under half the smallest gap measured.
constexpr double kReplayMargin = 0.05;

}  // namespace

TEST_CASE("replaying images of the old classes keeps more of them than the same FT step without replay", "[cpu]") {
  const ReplayEffect r = run_replay_effect(1);
  CHECK(r.step0.means.old_without_background > 0.3);
  CHECK(r.with.means.old_without_background - r.without.means.old_without_background > kReplayMargin);
}

TEST_CASE("the replay margin holds for other seeds", "[slow]") {
  for (uint64_t seed = 2; seed <= 10; ++seed) {
    const ReplayEffect r = run_replay_effect(seed);
    CHECK(r.with.means.old_without_background - r.without.means.old_without_background > kReplayMargin);
  }
}

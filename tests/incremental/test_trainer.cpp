// The trainer end to end (incremental/trainer.h) on a generated dataset: FT forgets the old classes
// and MiB keeps them (the margin asserted is far inside the range measured over seeds, see below),
// LwF-MC trains from step 0 with its own loss and records its variant in the checkpoint, EWC, PI and
// RW hand their importance from step 0 to step 1 and penalise there (a step 1 without it is an error),
// a step stopped mid-way and resumed with --ckpt ends with bit-identical weights, re-running with the
// same seed is reproducible, --test re-evaluates a checkpoint, the outputs (checkpoint metadata,
// JSONL log, results CSV) hold what they promise, and bad input gives clear errors: unknown task or
// method, a step out of range, a missing or incomplete previous-step checkpoint, a checkpoint of
// another task or backbone, a bad test label before anything trains, a bad training label left out
// by --skip-bad in that run only, a stop signal between iterations.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>

#include "data/generate.h"
#include "data/image.h"
#include "engine/finite.h"
#include "engine/interrupt.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "incremental/checkpoint.h"
#include "incremental/run_report.h"
#include "incremental/trainer.h"
#include "tests/data/temp_dir.h"
#include "tests/incremental/resume_check.h"
#include "tests/support/capture_stderr.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::incremental;

namespace {

// A small generated VOC-layout dataset with 20 classes (the VOC label space: VOC task names apply).
void make_dataset(const std::string& root, uint64_t seed) {
  data::GenerateOptions o;
  o.classes = 20;
  o.train = 160;
  o.val = 60;
  o.size = 64;
  o.seed = seed;
  o.threads = 2;
  data::generate_dataset(root, o);
}

const std::string& shared_dataset() {
  static test::TempDir dir("incremental_trainer_data");
  static const bool made = (make_dataset(dir.str(), 5), true);
  (void)made;
  static const std::string root = dir.str();
  return root;
}

// The end-to-end settings: task 15-5 overlapped, strata's small model at output stride 8, crop 48
// (6x6 features), batch 8; step 0: 12 epochs at lr 0.05, step 1: 12 epochs at lr 0.01 (with 6, too
// few iterations for either method to learn the new classes measurably).
TrainOptions e2e_options(const std::string& data_root, const std::string& output, uint64_t seed) {
  TrainOptions o;
  o.dataset = "voc";
  o.data_root = data_root;
  o.task = "15-5";
  o.protocol = Protocol::overlapped;
  o.backbone = "small";
  o.output_stride = 8;
  o.crop_size = 48;
  o.batch_size = 8;
  o.epochs = {12, 12};
  o.lr = {0.05, 0.01};
  o.seed = seed;
  o.workers = 2;
  o.output = output;
  o.progress = false;
  o.print_tables = false;
  return o;
}

struct FtVsMib {
  StepResult step0, ft, mib, plop;
};

// Step 0 once, then step 1 with FT, with MiB and with PLOP from that same checkpoint (as the demo).
FtVsMib run_ft_vs_mib(const std::string& data_root, const std::string& output, uint64_t seed) {
  FtVsMib out;
  TrainOptions base = e2e_options(data_root, output, seed);
  TrainOptions step0 = base;
  step0.name = "step0";
  out.step0 = Trainer(step0, nullptr).run_step(0);
  for (const std::string method : {"FT", "MiB", "PLOP"}) {
    TrainOptions o = base;
    o.name = method;
    o.method = method;
    o.step = 1;
    o.step_ckpt = out.step0.checkpoint;
    (method == "FT" ? out.ft : method == "MiB" ? out.mib : out.plop) = Trainer(o, nullptr).run_step(1);
  }
  return out;
}

// Training options of a quick step (1 epoch, crop 32) for the checks that need a checkpoint.
TrainOptions quick_options(const std::string& output, const std::string& name) {
  TrainOptions o = e2e_options(shared_dataset(), output, 7);
  o.name = name;
  o.crop_size = 32;
  o.epochs = {1};
  return o;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// ---- FT forgets, MiB keeps ------------------------------------------------------------------------

// The margin: MiB's old-class mIoU (background excluded) minus FT's after step 1, with these exact
// settings. Measured (the [slow] test below prints it for dataset and training seeds 1..5): seed 42
// (the test below) 0.35; seeds 1..5: 0.37, 0.34, 0.37, 0.37, 0.36. FT keeps at most 0.03 of the old
// classes, MiB about what step 0 learned (0.34-0.39 of 0.37-0.41). 0.25 is asserted: well below
// every measured gap, far above what a method without distillation keeps.
constexpr double kOldClassMargin = 0.25;

// A learning rate at which SGD on the small model overflows to Inf within a few iterations (weight
// decay alone multiplies the weights by 1 - lr * 1e-4 per iteration).
constexpr double kDivergingLr = 1e10;

TEST_CASE("after step 1 MiB and PLOP keep the old classes that FT forgets (15-5 overlapped, fixed seed)", "[cpu]") {
  test::TempDir out("trainer_e2e");
  const FtVsMib r = run_ft_vs_mib(shared_dataset(), out.str(), 42);
  INFO("step 0 old " << r.step0.means.old_without_background << ", FT old " << r.ft.means.old_without_background
                     << " new " << r.ft.means.new_without_background << ", MiB old "
                     << r.mib.means.old_without_background << " new " << r.mib.means.new_without_background
                     << ", PLOP old " << r.plop.means.old_without_background << " new "
                     << r.plop.means.new_without_background);
  std::printf("e2e 15-5: step 0 old %.3f | FT old %.3f new %.3f | MiB old %.3f new %.3f | PLOP old %.3f new %.3f\n",
              r.step0.means.old_without_background, r.ft.means.old_without_background,
              r.ft.means.new_without_background, r.mib.means.old_without_background, r.mib.means.new_without_background,
              r.plop.means.old_without_background, r.plop.means.new_without_background);
  // Step 0 learned something worth keeping, FT lost most of it, MiB kept it.
  CHECK(r.step0.means.old_without_background > 0.3);
  CHECK(r.mib.means.old_without_background - r.ft.means.old_without_background > kOldClassMargin);
  CHECK(r.mib.means.old_with_background - r.ft.means.old_with_background > kOldClassMargin);
  CHECK(r.plop.means.old_without_background - r.ft.means.old_without_background > kOldClassMargin);
  // Both learned the new classes.
  CHECK(r.ft.means.new_without_background > 0.05);
  CHECK(r.mib.means.new_without_background > 0.05);
  // PLOP learns the new classes more slowly here (0.034 at seed 42, MiB 0.147): its adaptive factor
  // scales each image's CE, new-class pixels included, by the share of accepted background pixels. Only
  // that it learned something is asserted.
  CHECK(r.plop.means.new_without_background > 0.01);
  // The step-1 runs started from the step-0 checkpoint and wrote their own, complete.
  for (const StepResult* s : {&r.ft, &r.mib, &r.plop}) {
    const Checkpoint c = load_checkpoint(s->checkpoint);
    CHECK(c.info.complete);
    CHECK(c.info.step == 1);
    CHECK(c.info.model.classes == std::vector<int64_t>{16, 5});
  }
}

TEST_CASE("the MiB - FT and PLOP - FT old-class margins hold for other seeds", "[slow]") {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    test::TempDir data("trainer_margin_data");
    make_dataset(data.str(), seed);
    test::TempDir out("trainer_margin");
    const FtVsMib r = run_ft_vs_mib(data.str(), out.str(), seed);
    const double gap = r.mib.means.old_without_background - r.ft.means.old_without_background;
    const double plop_gap = r.plop.means.old_without_background - r.ft.means.old_without_background;
    std::printf(
        "seed %llu: step 0 old %.3f | FT old %.3f new %.3f | MiB old %.3f new %.3f | gap %.3f | PLOP old %.3f "
        "new %.3f | gap %.3f\n",
        static_cast<unsigned long long>(seed), r.step0.means.old_without_background, r.ft.means.old_without_background,
        r.ft.means.new_without_background, r.mib.means.old_without_background, r.mib.means.new_without_background, gap,
        r.plop.means.old_without_background, r.plop.means.new_without_background, plop_gap);
    CHECK(gap > kOldClassMargin);
    CHECK(plop_gap > kOldClassMargin);
  }
}

// ---- resume and reproducibility -------------------------------------------------------------------

TEST_CASE("a step stopped mid-epoch and resumed with --ckpt ends with bit-identical weights", "[cpu]") {
  test::TempDir out("trainer_resume");
  test::check_resume_is_bit_identical([&](const std::string& name) { return quick_options(out.str(), name); });
}

namespace {

// An output stream that raises `flag` (as SIGTERM would) once the printed text holds `trigger`: a stop
// request at a known point of a run, e.g. after the progress line of iteration 3.
class StopWhenPrinted {
 public:
  StopWhenPrinted(StopFlag& flag, std::string trigger) : flag_(flag), trigger_(std::move(trigger)) {
    cookie_io_functions_t io{};
    io.write = &StopWhenPrinted::write;
    file_ = fopencookie(this, "w", io);
    REQUIRE(file_ != nullptr);
  }
  ~StopWhenPrinted() { std::fclose(file_); }
  StopWhenPrinted(const StopWhenPrinted&) = delete;
  StopWhenPrinted& operator=(const StopWhenPrinted&) = delete;

  std::FILE* file() const { return file_; }
  const std::string& text() const { return text_; }

 private:
  static ssize_t write(void* cookie, const char* data, size_t size) {
    auto* self = static_cast<StopWhenPrinted*>(cookie);
    self->text_.append(data, size);
    if (self->text_.find(self->trigger_) != std::string::npos) self->flag_.request(SIGTERM);
    return static_cast<ssize_t>(size);
  }

  StopFlag& flag_;
  std::string trigger_;
  std::FILE* file_ = nullptr;
  std::string text_;
};

}  // namespace

TEST_CASE("a stop request ends a step at its next safe point: after an iteration, in the evaluation, before training",
          "[cpu]") {
  test::TempDir out("trainer_stop_request");
  TrainOptions o = quick_options(out.str(), "stopped");
  o.progress = true;
  o.log_interval = 1;
  const std::string path = Trainer(o, nullptr).checkpoint_path(0);
  auto interrupted = [](Trainer& trainer, int step) {
    try {
      trainer.run_step(step);
    } catch (const Interrupted& e) {
      return e;
    }
    FAIL("the step was not interrupted");
    return Interrupted(0, "");
  };
  // Raised while iteration 3 runs: the step stops after it with the checkpoint of iteration 3.
  {
    StopFlag flag;
    StopWhenPrinted output(flag, "% 3/");
    Trainer trainer(o, output.file());
    trainer.stop_when(flag);
    const Interrupted e = interrupted(trainer, 0);
    CHECK(e.signal() == SIGTERM);
    CHECK(e.step() == 0);
    CHECK(e.checkpoint() == path);
    CHECK_THAT(e.what(), Catch::Contains("step 0 stopped by SIGTERM after iteration 3 of ") &&
                             Catch::Contains("its checkpoint: " + path + " (iteration 3)"));
    CHECK_THAT(output.text(), Catch::Contains("step 0: SIGTERM: writing the checkpoint of iteration 3"));
    const Checkpoint stopped = load_checkpoint(path);
    CHECK(stopped.info.iteration == 3);
    CHECK_FALSE(stopped.info.complete);
    CHECK_THAT(read_text(trainer.log_path()), Catch::Contains(R"("event":"interrupted")"));
  }
  // Resumed, and raised once training is done: the evaluation stops, the complete checkpoint is
  // named and no result is written.
  {
    StopFlag flag;
    StopWhenPrinted output(flag, " iterations in ");
    TrainOptions resume = o;
    resume.ckpt = path;
    Trainer trainer(resume, output.file());
    trainer.stop_when(flag);
    const Interrupted e = interrupted(trainer, 0);
    CHECK(e.checkpoint() == path);
    CHECK_THAT(e.what(), Catch::Contains("the evaluation stopped by SIGTERM after 1 of "));
    CHECK(load_checkpoint(path).info.complete);
    CHECK_FALSE(std::filesystem::exists(trainer.results_path()));
  }
  // Raised before the step starts (while the label index is scanned, say): nothing is written; under
  // --test the evaluation stops and nothing is left to resume.
  {
    StopFlag flag;
    flag.request(SIGINT);
    TrainOptions fresh = o;
    fresh.name = "fresh";
    Trainer trainer(fresh, nullptr);
    trainer.stop_when(flag);
    const Interrupted e = interrupted(trainer, 0);
    CHECK(e.step() == 0);
    CHECK(e.checkpoint().empty());
    CHECK_THAT(e.what(),
               Catch::Contains("step 0 stopped by SIGINT before training") && Catch::Contains("nothing was written"));
    CHECK_FALSE(std::filesystem::exists(trainer.checkpoint_path(0)));
    TrainOptions test_only = o;
    test_only.test = true;
    Trainer tester(test_only, nullptr);
    tester.stop_when(flag);
    const Interrupted t = interrupted(tester, 0);
    CHECK(t.step() == -1);
    CHECK_THAT(t.what(), Catch::Contains("evaluating " + path) && Catch::Contains("nothing was written"));
  }
}

TEST_CASE("the same seed gives the same weights, another seed does not", "[cpu]") {
  test::TempDir out("trainer_repro");
  const StepResult a = Trainer(quick_options(out.str(), "a"), nullptr).run_step(0);
  const StepResult b = Trainer(quick_options(out.str(), "b"), nullptr).run_step(0);
  test::require_identical_tensors(a.checkpoint, b.checkpoint);
  TrainOptions other = quick_options(out.str(), "c");
  other.seed = 8;
  const StepResult c = Trainer(other, nullptr).run_step(0);
  const Tensor wa = load_safetensors(a.checkpoint).tensors.at("cls.0.weight");
  const Tensor wc = load_safetensors(c.checkpoint).tensors.at("cls.0.weight");
  CHECK(wa.to_vector<float>() != wc.to_vector<float>());
}

// ---- test mode, outputs ---------------------------------------------------------------------------

namespace {

// The PNG files of `folder`, by name, with their bytes.
std::map<std::string, std::string> pngs_in(const std::filesystem::path& folder) {
  std::map<std::string, std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    std::ifstream in(entry.path(), std::ios::binary);
    out[entry.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

}  // namespace

TEST_CASE("save-predictions writes every test image's strip at a step's end, and --test writes the same bytes",
          "[cpu]") {
  test::TempDir out("trainer_save_predictions");
  TrainOptions o = quick_options(out.str(), "pictures");
  o.save_predictions = out / "pictures";
  const StepResult step0 = Trainer(o, nullptr).run_step(0);
  TrainOptions step1 = o;
  step1.method = "MiB";
  step1.step = 1;
  const StepResult trained = Trainer(step1, nullptr).run_step(1);
  // Step 0: image | ground truth | prediction; step 1 also the previous step's prediction. One file
  // per evaluated image, named after it, each a PNG of the crop's height plus the legend.
  for (const auto& [step, result, panels] : {std::tuple{0, step0, 3}, std::tuple{1, trained, 4}}) {
    INFO("step " << step);
    const std::map<std::string, std::string> files =
        pngs_in(std::filesystem::path(out / "pictures") / cat("step", step));
    CHECK(static_cast<int64_t>(files.size()) == result.scores.images);
    for (const auto& [name, bytes] : files) {
      INFO(name);
      CHECK(name.size() > 4);
      CHECK(name.substr(name.size() - 4) == ".png");
      const data::Image strip = data::decode_image(bytes, name);
      CHECK(strip.width == panels * 32);
      CHECK(strip.height > 32);
    }
  }
  // strata report finds the run's setting (logged by run_step too; step 1's trainer logged last), its
  // steps and, through the logged --save-predictions folder, its strips.
  const std::vector<RunLog> runs = read_runs({out.str()}, 2);
  REQUIRE(runs.size() == 1);
  CHECK_THAT(runs[0].setting("method"), Catch::StartsWith("MiB"));  // the last trainer's record
  REQUIRE(runs[0].results.size() == 2);
  CHECK(runs[0].results[1].means.old_with_background == Approx(trained.means.old_with_background));
  CHECK(runs[0].steps[1].channel_names == Trainer(step1, nullptr).task().channel_names(1));
  CHECK(runs[0].predictions.size() == 4);
  // A folder that cannot be made is an error naming it, before the evaluation runs.
  TrainOptions blocked = step1;
  blocked.test = true;
  blocked.save_predictions = out / "a_file";
  { std::ofstream(out / "a_file") << "not a folder"; }
  CHECK_THROWS_WITH(Trainer(blocked, nullptr).run_step(1),
                    Catch::Contains("--save-predictions: cannot create the folder " + (out / "a_file") + "/step1"));
  // strata eval's path (--test) on step 1's checkpoint: the same predictions, so the same bytes.
  TrainOptions tester = step1;
  tester.test = true;
  tester.save_predictions = out / "again";
  Trainer(tester, nullptr).run_step(1);
  CHECK(pngs_in(std::filesystem::path(out / "again") / "step1") ==
        pngs_in(std::filesystem::path(out / "pictures") / "step1"));
}

TEST_CASE("test mode (--test) re-evaluates a step checkpoint to the scores its training reported", "[cpu]") {
  test::TempDir out("trainer_test_mode");
  const StepResult trained = Trainer(quick_options(out.str(), "run"), nullptr).run_step(0);
  TrainOptions test_only = quick_options(out.str(), "run");
  test_only.test = true;
  const StepResult tested = Trainer(test_only, nullptr).run_step(0);
  CHECK_FALSE(tested.trained);
  CHECK(tested.iterations == 0);
  CHECK(tested.scores.iou == trained.scores.iou);
  CHECK(tested.scores.pixels == trained.scores.pixels);
  // An explicit --ckpt of the same step works too; --test of a step never trained names the file.
  test_only.ckpt = trained.checkpoint;
  CHECK(Trainer(test_only, nullptr).run_step(0).scores.iou == trained.scores.iou);
  TrainOptions missing = quick_options(out.str(), "never");
  missing.test = true;
  CHECK_THROWS_WITH(Trainer(missing, nullptr).run_step(0),
                    Catch::Contains("does not exist") && Catch::Contains("15-5-voc_never_0.safetensors"));
}

TEST_CASE("a step writes its checkpoint metadata, JSONL log records and results CSV row", "[cpu]") {
  test::TempDir out("trainer_outputs");
  TrainOptions o = quick_options(out.str(), "outputs");
  o.log_interval = 2;
  Trainer trainer(o, nullptr);
  const StepResult r = trainer.run_step(0);

  CHECK(r.checkpoint == (out.path() / "checkpoints" / "15-5-voc_outputs_0.safetensors").string());
  const Checkpoint c = load_checkpoint(r.checkpoint);
  CHECK(c.info.task == "15-5");
  CHECK(c.info.dataset == "voc");
  CHECK(c.info.labels == 21);
  CHECK(c.info.step == 0);
  CHECK(c.info.channel_order.size() == 16);
  CHECK(c.info.method == "FT (ce only)");
  CHECK(c.info.protocol == "overlapped");
  CHECK(c.info.convention == "plop");
  CHECK(c.info.model.width == 16);
  CHECK(c.info.model.head_channels == 64);
  CHECK(c.info.model.blocks == std::vector<int>{1, 1, 1, 1});
  CHECK(c.info.batch_size == 8);
  CHECK(c.info.crop_size == 32);
  CHECK(c.info.lr == 0.05);
  CHECK(c.info.seed == 7);
  CHECK(c.info.complete);
  CHECK(c.info.iteration == r.iterations);
  CHECK(c.info.iteration == c.info.max_iterations());
  CHECK(c.optimizer_metadata.at("sgd.steps") == std::to_string(r.iterations));
  CHECK(c.optimizer.count("momentum_buffer.cls.0.weight") == 1);
  CHECK(c.model.count("body.mod1.conv1.weight") == 1);
  CHECK(c.method_state.empty());

  // Every log line is a JSON object; training records carry the loss, its terms, lr, speed, memory.
  std::istringstream log(read_text(trainer.log_path()));
  std::string line;
  std::map<std::string, int> events;
  while (std::getline(log, line)) {
    const json::Value record = json::parse(line);
    const std::string event = record.at("event").as_string();
    ++events[event];
    if (event == "train") {
      CHECK(record.at("loss").as_double() > 0);
      CHECK(record.at("ce").as_double() > 0);
      CHECK(record.at("lr").as_double() > 0);
      CHECK(record.at("images_per_second").as_double() > 0);
      CHECK(record.at("peak_memory_bytes").as_int() > 0);
    }
    if (event == "result") CHECK(record.at("iou").as_array().size() == 16);
  }
  CHECK(events["step_start"] == 1);
  CHECK(events["train"] == (r.iterations + 1) / 2);
  CHECK(events["checkpoint"] >= 1);
  CHECK(events["result"] == 1);

  // One results row (PLOP's format over the 21 labels: 'x' for unseen), replaced when run again.
  const std::string csv = read_text(trainer.results_path());
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1);
  CHECK(csv.rfind("0,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), 'x') == 5);
  Trainer(o, nullptr).run_step(0);
  CHECK(read_text(trainer.results_path()) == csv);
}

TEST_CASE("a step writes TensorBoard scalars and sample strips with MiB's tags, read back by TensorBoard's reader",
          "[torch]") {
  test::TempDir out("trainer_tensorboard");
  TrainOptions o = quick_options(out.str(), "board");
  o.log_interval = 2;
  o.val_interval = 1;
  o.epochs = {2};  // the first epoch ends with a validation, the last with the step's test
  o.sample_num = 2;
  const StepResult r = Trainer(o, nullptr).run_step(0);
  const std::filesystem::path folder = out.path() / "logs" / "15-5-voc" / "board";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  CHECK(files[0].filename().string().find("tfevents") != std::string::npos);
  const std::string command = cat("'", test::python_executable(), "' '", test::source_dir(),
                                  "/tools/read_tensorboard_events.py' '", files[0].string(), "'");
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  REQUIRE(::pclose(pipe) == 0);
  // tag -> (step, value) of its last record
  std::map<std::string, std::pair<int64_t, double>> last;
  std::map<std::string, int> count;
  std::vector<std::string> images;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string kind, tag;
    int64_t step = 0;
    double value = 0, wall_time = 0;
    if (!(fields >> kind)) continue;
    if (kind == "image") {
      images.push_back(line.substr(6));
      continue;
    }
    if (kind != "scalar") continue;
    REQUIRE(fields >> step >> tag >> value >> wall_time);
    CHECK(tag.find(' ') == std::string::npos);
    last[tag] = {step, value};
    ++count[tag];
  }
  INFO(output);
  CHECK(count["Loss/0"] == (r.iterations + 1) / 2);
  CHECK(count["Loss-ce/0"] == count["Loss/0"]);
  CHECK(count["LR/0"] == count["Loss/0"]);
  CHECK(count["Grad_Norm/0"] == count["Loss/0"]);
  CHECK(last["Loss/0"].first == r.iterations);
  CHECK(count["Val_MeanIoU/0"] == 1);
  CHECK(last["Val_MeanIoU/0"].first == 1);  // at the epoch, as MiB's
  CHECK(last["T_MeanIoU/0"].first == 0);
  CHECK(last["T_MeanIoU/0"].second == Approx(r.scores.mean_iou).epsilon(1e-6));
  CHECK(last["T_Overall_Acc/0"].second == Approx(r.scores.pixel_accuracy).epsilon(1e-6));
  CHECK(last["T_MeanIoU_all/0"].second == Approx(r.means.all_with_background).epsilon(1e-6));
  CHECK(count["T_Class_IoU/background/0"] == 1);
  // --sample-num 2: image | labels | prediction strips of the 32x32 evaluation crops, at the
  // validation's epoch (1) and at the step's test (after epoch 2), as PNGs TensorBoard decodes: 96
  // pixels wide, and taller than the panels by the legend (the panel titles, then at least one row
  // of classes; the generated names wrap to several rows at this width).
  REQUIRE(images.size() == 4);
  const char* tags[] = {"1 Sample_0/0", "1 Sample_1/0", "2 Sample_0/0", "2 Sample_1/0"};
  for (size_t i = 0; i < 4; ++i) {
    INFO(images[i]);
    std::istringstream fields(images[i]);
    int64_t step = 0, height = 0, width = 0;
    std::string tag, size, colours;
    REQUIRE(fields >> step >> tag >> height >> width >> size >> colours);
    CHECK(cat(step, " ", tag) == tags[i]);
    CHECK(width == 96);
    CHECK(height >= 32 + 4 + 2 * 12 + 4);
    CHECK(size == cat(width, "x", height));
    CHECK(colours == "RGB");
  }
}

// The loss terms of the "train" records of a JSONL log: each record's keys among `terms`, in order
// of appearance, once per record.
std::vector<std::vector<std::string>> logged_terms(const std::string& path, const std::vector<std::string>& terms) {
  std::istringstream log(read_text(path));
  std::vector<std::vector<std::string>> out;
  for (std::string line; std::getline(log, line);) {
    const json::Value record = json::parse(line);
    if (record.at("event").as_string() != "train") continue;
    std::vector<std::string> found;
    for (const std::string& term : terms) {
      if (record.find(term) != nullptr) {
        CHECK(std::isfinite(record.at(term).as_double()));
        found.push_back(term);
      }
    }
    out.push_back(found);
  }
  return out;
}

TEST_CASE("LwF-MC trains steps 0 and 1 (BCE from step 0), records its method, refuses a resume under another one",
          "[cpu]") {
  test::TempDir out("trainer_lwf_mc");
  const std::vector<std::string> terms = {"ce", "unce", "bce", "icarl", "icarl_disjoint", "kd", "unkd"};
  TrainOptions o = quick_options(out.str(), "lwf_mc");
  o.method = "LwF-MC";
  o.log_interval = 4;
  Trainer step0_trainer(o, nullptr);
  const StepResult step0 = step0_trainer.run_step(0);
  REQUIRE(step0.trained);
  CHECK(load_checkpoint(step0.checkpoint).info.method == "LwF-MC (bce, icarl x10)");
  CHECK(load_checkpoint(step0.checkpoint).info.complete);
  // Step 0 trains with the one-hot BCE, not CE, as the reference's LwF-MC.
  for (const auto& record : logged_terms(step0_trainer.log_path(), terms)) {
    CHECK(record == std::vector<std::string>{"bce"});
  }

  // Step 1 from it: BCE + the sigmoid distillation of the old channels.
  o.step = 1;
  Trainer step1_trainer(o, nullptr);
  const StepResult step1 = step1_trainer.run_step(1);
  REQUIRE(step1.trained);
  const Checkpoint c = load_checkpoint(step1.checkpoint);
  CHECK(c.info.method == "LwF-MC (bce, icarl x10)");
  CHECK(c.info.step == 1);
  CHECK(c.info.complete);
  CHECK(c.method_state.empty());
  CHECK(c.model.count("cls.1.weight") == 1);
  CHECK(std::isfinite(step1.means.all_with_background));
  std::vector<std::vector<std::string>> step1_terms = logged_terms(step1_trainer.log_path(), terms);
  REQUIRE_FALSE(step1_terms.empty());
  CHECK(step1_terms.back() == std::vector<std::string>{"bce", "icarl"});

  // The disjoint variant with the labels' background runs from the same step-0 checkpoint.
  TrainOptions variant = o;
  variant.name = "lwf_mc_bkg";
  variant.step_ckpt = step0.checkpoint;
  variant.method_overrides.icarl_disjoint = true;
  variant.method_overrides.icarl_bkg = true;
  variant.stop_after = 2;
  variant.log_interval = 1;
  Trainer variant_trainer(variant, nullptr);
  const StepResult stopped = variant_trainer.run_step(1);
  CHECK(stopped.stopped);
  CHECK(load_checkpoint(stopped.checkpoint).info.method == "LwF-MC+ (bce, icarl disjoint bkg)");
  CHECK(logged_terms(variant_trainer.log_path(), terms).back() == std::vector<std::string>{"icarl_disjoint"});

  // Resuming step 1 under another method, or another LwF-MC variant, is refused naming both.
  TrainOptions resume = o;
  resume.ckpt = step1.checkpoint;
  resume.method = "MiB";
  CHECK_THROWS_WITH(Trainer(resume, nullptr).run_step(1),
                    Catch::Contains("to resume") && Catch::Contains("its method is LwF-MC (bce, icarl x10)") &&
                        Catch::Contains("this run's is MiB"));
  resume.method = "LwF-MC";
  resume.method_overrides.icarl_disjoint = true;
  CHECK_THROWS_WITH(Trainer(resume, nullptr).run_step(1),
                    Catch::Contains("its method is LwF-MC (bce, icarl x10)") &&
                        Catch::Contains("this run's is LwF-MC+ (bce, icarl disjoint)"));
  // Contradictory LwF-MC flags stop the run before anything is written.
  TrainOptions contradictory = quick_options(out.str(), "contradictory");
  contradictory.method = "LwF-MC";
  contradictory.method_overrides.unce = true;
  CHECK_THROWS_WITH(Trainer(contradictory, nullptr), Catch::Contains("--unce") && Catch::Contains("--icarl"));
  CHECK_FALSE(std::filesystem::exists(out.path() / "checkpoints" / "15-5-voc_contradictory_0.safetensors"));
}

// The values of one logged term over a JSONL log's "train" records.
std::vector<double> logged_values(const std::string& path, const std::string& term) {
  std::istringstream log(read_text(path));
  std::vector<double> out;
  for (std::string line; std::getline(log, line);) {
    const json::Value record = json::parse(line);
    if (record.at("event").as_string() == "train" && record.find(term) != nullptr) {
      out.push_back(record.at(term).as_double());
    }
  }
  return out;
}

// Whether two checkpoints' models differ in some tensor both have.
bool models_differ(const Checkpoint& a, const Checkpoint& b) {
  for (const auto& [name, t] : a.model) {
    auto it = b.model.find(name);
    if (it != b.model.end() && t.to_vector<double>() != it->second.to_vector<double>()) return true;
  }
  return false;
}

TEST_CASE("EWC accumulates its Fisher at step 0 and penalises at step 1: a finite positive 'reg' term, unlike FT",
          "[cpu]") {
  test::TempDir out("trainer_ewc");
  TrainOptions o = quick_options(out.str(), "ewc");
  o.method = "EWC";
  o.log_interval = 4;
  const StepResult step0 = Trainer(o, nullptr).run_step(0);
  const Checkpoint c0 = load_checkpoint(step0.checkpoint);
  CHECK(c0.info.method == "EWC (ewc x100 alpha 0.9)");
  // A Fisher tensor per parameter (the classifier's included), moved away from its initial ones by
  // the gradients.
  CHECK(c0.method_state.count("fisher.cls.0.weight") == 1);
  CHECK(c0.method_state.size() > 10);
  bool moved = false;
  for (const auto& [key, t] : c0.method_state) {
    INFO(key);
    REQUIRE(key.rfind("fisher.", 0) == 0);
    REQUIRE(c0.model.count(key.substr(7)) == 1);
    CHECK(t.shape() == c0.model.at(key.substr(7)).shape());
    const std::vector<double> f = t.to_vector<double>();
    CHECK(std::all_of(f.begin(), f.end(), [](double v) { return std::isfinite(v) && v >= 0; }));
    moved = moved || f[0] != 1.0;
  }
  CHECK(moved);

  o.step = 1;
  Trainer ewc_trainer(o, nullptr);
  const StepResult ewc = ewc_trainer.run_step(1);
  const std::vector<double> reg = logged_values(ewc_trainer.log_path(), "reg");
  REQUIRE(reg.size() >= 2);
  for (double v : reg) CHECK((std::isfinite(v) && v > 0));
  CHECK(logged_terms(ewc_trainer.log_path(), {"ce", "reg"}).back() == std::vector<std::string>{"ce", "reg"});
  // The step-1 checkpoint carries the Fisher of the new classifier too, for a step 2.
  CHECK(load_checkpoint(ewc.checkpoint).method_state.count("fisher.cls.1.weight") == 1);

  TrainOptions ft = o;
  ft.name = "ft";
  ft.method = "FT";
  ft.step_ckpt = step0.checkpoint;
  const StepResult ft_step1 = Trainer(ft, nullptr).run_step(1);
  CHECK(models_differ(load_checkpoint(ewc.checkpoint), load_checkpoint(ft_step1.checkpoint)));
  CHECK(load_checkpoint(ft_step1.checkpoint).method_state.empty());
}

TEST_CASE("PI and RW train steps 0 and 1, handing their score on, with a finite positive penalty", "[cpu]") {
  test::TempDir out("trainer_pi_rw");
  for (const char* method : {"PI", "RW"}) {
    INFO(method);
    TrainOptions o = quick_options(out.str(), method);
    o.method = method;
    o.log_interval = 4;
    const StepResult step0 = Trainer(o, nullptr).run_step(0);
    const Checkpoint c0 = load_checkpoint(step0.checkpoint);
    REQUIRE(c0.method_state.count("score.cls.0.weight") == 1);
    for (const auto& [name, t] : c0.method_state) {
      if (name.rfind("score.", 0) != 0) continue;
      INFO(name);
      const std::vector<double> score = t.to_vector<double>();
      CHECK(std::all_of(score.begin(), score.end(), [](double v) { return std::isfinite(v) && v >= 0; }));
    }
    o.step = 1;
    o.stop_after = 9;
    Trainer trainer(o, nullptr);
    trainer.run_step(1);
    const std::vector<double> reg = logged_values(trainer.log_path(), "reg");
    REQUIRE_FALSE(reg.empty());
    for (double v : reg) CHECK((std::isfinite(v) && v > 0));
  }
}

TEST_CASE("an EWC step stopped mid-epoch and resumed with --ckpt ends with the same weights and Fisher bits", "[cpu]") {
  test::TempDir out("trainer_ewc_resume");
  test::check_resume_is_bit_identical([&](const std::string& name) { return quick_options(out.str(), name); }, "EWC",
                                      true);
}

TEST_CASE("a PLOP step resumed mid-step reads its pseudo-label thresholds back and ends with the same bits", "[cpu]") {
  test::TempDir out("trainer_plop_resume");
  // Crop 64: Local POD's scale 4 needs the head's 4x4 map at output stride 16.
  test::check_resume_is_bit_identical(
      [&](const std::string& name) {
        TrainOptions o = quick_options(out.str(), name);
        o.crop_size = 64;
        return o;
      },
      "PLOP");
  // The final step-1 checkpoint carries the thresholds, as every checkpoint of the step.
  TrainOptions split = quick_options(out.str(), "split");
  split.step = 1;
  const Checkpoint c = load_checkpoint(Trainer(split, nullptr).checkpoint_path(1));
  CHECK(c.method_state.count("pseudo_thresholds") == 1);
  CHECK(c.info.method.rfind("PLOP", 0) == 0);
}

TEST_CASE("RW resumed mid-step continues its path score and remembered point bit for bit", "[cpu]") {
  test::TempDir out("trainer_rw_resume");
  test::check_resume_is_bit_identical([&](const std::string& name) { return quick_options(out.str(), name); }, "RW",
                                      true);
}

TEST_CASE(
    "a regulariser at step 1 without importance in the step-0 checkpoint, or with contradictory flags, stops "
    "before anything is written",
    "[cpu]") {
  test::TempDir out("trainer_reg_errors");
  const StepResult ft0 = Trainer(quick_options(out.str(), "ft"), nullptr).run_step(0);
  for (const char* method : {"EWC", "PI", "RW"}) {
    INFO(method);
    TrainOptions o = quick_options(out.str(), std::string("missing_") + method);
    o.method = method;
    o.step = 1;
    o.step_ckpt = ft0.checkpoint;
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(1), Catch::Contains(ft0.checkpoint) &&
                                                           Catch::Contains(std::string("holds no ") + method) &&
                                                           Catch::Contains("FT (ce only)"));
    CHECK_FALSE(std::filesystem::exists(out.path() / "checkpoints" /
                                        (std::string("15-5-voc_missing_") + method + "_1.safetensors")));
  }
  // An EWC step 0 does not hold PI's score.
  TrainOptions ewc = quick_options(out.str(), "ewc");
  ewc.method = "EWC";
  const StepResult ewc0 = Trainer(ewc, nullptr).run_step(0);
  TrainOptions pi = quick_options(out.str(), "pi_from_ewc");
  pi.method = "PI";
  pi.step = 1;
  pi.step_ckpt = ewc0.checkpoint;
  CHECK_THROWS_WITH(Trainer(pi, nullptr).run_step(1),
                    Catch::Contains("holds no PI importance") && Catch::Contains("EWC (ewc x100 alpha 0.9)"));
  // Flags that make no sense for the method.
  TrainOptions contradictory = quick_options(out.str(), "contradictory");
  contradictory.method = "EWC";
  contradictory.method_overrides.reg_iterations = 5;
  CHECK_THROWS_WITH(Trainer(contradictory, nullptr),
                    Catch::Contains("--reg-iterations") && Catch::Contains("--method EWC"));
  CHECK_FALSE(std::filesystem::exists(out.path() / "checkpoints" / "15-5-voc_contradictory_0.safetensors"));
}

// ---- bad input ------------------------------------------------------------------------------------

TEST_CASE("unknown tasks, methods, steps and options are clear errors", "[cpu]") {
  test::TempDir out("trainer_errors");
  TrainOptions o = quick_options(out.str(), "errors");
  {
    TrainOptions bad = o;
    bad.task = "15-6";
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("unknown task '15-6'") || Catch::Contains("15-6"));
  }
  {
    TrainOptions bad = o;
    bad.method = "EWCX";
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("unknown method 'EWCX'") && Catch::Contains("MiB"));
  }
  {
    TrainOptions bad = o;
    bad.step = 2;
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("has steps 0..1") && Catch::Contains("got step 2"));
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(-1), Catch::Contains("got step -1"));
  }
  {
    TrainOptions bad = o;
    bad.backbone = "resnet152";
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("--backbone 'resnet152'") &&
                                                 Catch::Contains("expected resnet18, resnet34, resnet50, resnet101"));
  }
  {
    TrainOptions bad = o;
    bad.arch = "deeplabv3+";
    CHECK_THROWS_WITH(Trainer(bad, nullptr),
                      Catch::Contains("--arch 'deeplabv3+'") &&
                          Catch::Contains("expected deeplabv3, pspnet, deeplabv3plus or bisenet"));
    bad.arch = "deeplabv3plus";
    bad.method = "LwF";
    bad.method_overrides.share_stages = 2;
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("--share-stages 2 with --arch deeplabv3plus"));
    bad.method = "FT";
    bad.method_overrides.share_stages.reset();
    bad.arch = "pspnet";
    bad.head = "torchvision";
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("--head torchvision chooses a DeepLabV3 head") &&
                                                 Catch::Contains("--arch pspnet has its own"));
  }
  {
    TrainOptions bad = o;
    bad.dataset = "kitti";
    CHECK_THROWS_WITH(Trainer(bad, nullptr),
                      Catch::Contains("--dataset 'kitti'") && Catch::Contains("voc, ade20k (ade) or coco"));
  }
  {
    TrainOptions bad = o;
    bad.device = "gpu";
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("--device 'gpu'"));
  }
  {
    TrainOptions bad = o;
    bad.method_overrides.loss_kd = -1.0;
    CHECK_THROWS_WITH(Trainer(bad, nullptr), Catch::Contains("--loss-kd must be >= 0"));
  }
  {
    TrainOptions bad = o;
    bad.batch_size = 1000;
    CHECK_THROWS_WITH(Trainer(bad, nullptr).run_step(0),
                      Catch::Contains("fewer than one batch of 1000") && Catch::Contains("step 0"));
  }
}

TEST_CASE("an emulated CUDA build warns that --device cuda runs on the CPU", "[cpu]") {
  if (std::string(cuda_backend()) != "emulated") return;  // a real or CPU-only build has nothing to say
  test::TempDir out("trainer_emulated_device");
  TrainOptions o = quick_options(out.str(), "emulated");
  o.device = "cuda";
  const std::string printed = out / "printed.txt";
  std::FILE* file = std::fopen(printed.c_str(), "w");
  REQUIRE(file != nullptr);
  Trainer trainer(o, file);
  std::fclose(file);
  CHECK_THAT(read_text(printed), Catch::Contains("warning: --device cuda: this build's CUDA backend is emulated on "
                                                 "the CPU"));
}

TEST_CASE("a missing, incomplete or mismatched previous-step checkpoint is a clear error", "[cpu]") {
  test::TempDir out("trainer_checkpoint_errors");
  auto step1 = [&](const std::string& name) {
    TrainOptions o = quick_options(out.str(), name);
    o.step = 1;
    o.method = "MiB";
    return o;
  };
  // No step-0 checkpoint: the message names the file and how to get it.
  CHECK_THROWS_WITH(Trainer(step1("nothing"), nullptr).run_step(1),
                    Catch::Contains("needs the checkpoint of step 0") &&
                        Catch::Contains("15-5-voc_nothing_0.safetensors") && Catch::Contains("--step-ckpt"));

  const StepResult step0 = Trainer(quick_options(out.str(), "base"), nullptr).run_step(0);

  // A checkpoint of another task (10-10: 11 classes at step 0, not 16).
  {
    TrainOptions o = step1("other_task");
    o.task = "10-10";
    o.step_ckpt = step0.checkpoint;
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(1),
                      Catch::Contains("its task is task 15-5") && Catch::Contains("this run's is task 10-10"));
  }
  // A checkpoint of another backbone (width 8 instead of 16).
  {
    TrainOptions o = step1("other_backbone");
    o.width = 8;
    o.step_ckpt = step0.checkpoint;
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(1),
                      Catch::Contains("its model is") && Catch::Contains("width 16") && Catch::Contains("width 8"));
  }
  // A checkpoint of another step given as the previous one.
  {
    TrainOptions o = step1("wrong_step");
    o.step_ckpt = step0.checkpoint;
    const StepResult s1 = Trainer(o, nullptr).run_step(1);
    TrainOptions again = step1("wrong_step_again");
    again.step_ckpt = s1.checkpoint;
    CHECK_THROWS_WITH(Trainer(again, nullptr).run_step(1),
                      Catch::Contains("its step is 1") && Catch::Contains("this run's is 0"));
  }
  // An incomplete step-0 checkpoint.
  {
    TrainOptions stop = quick_options(out.str(), "stopped");
    stop.stop_after = 1;
    const StepResult stopped = Trainer(stop, nullptr).run_step(0);
    REQUIRE(stopped.stopped);
    CHECK_THROWS_WITH(Trainer(step1("stopped"), nullptr).run_step(1),
                      Catch::Contains("stopped at iteration 1") && Catch::Contains("--ckpt"));
  }
  // Resuming under another method or seed.
  {
    TrainOptions o = quick_options(out.str(), "base");
    o.ckpt = step0.checkpoint;
    o.method = "LwF";
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(0),
                      Catch::Contains("to resume") && Catch::Contains("its method is FT (ce only)"));
    o.method = "FT";
    o.seed = 9;
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(0), Catch::Contains("its seed is 7"));
  }
  // A file that is not a step checkpoint.
  {
    const std::string weights = out / "weights.safetensors";
    save_safetensors(weights, {{"x", Tensor::zeros({2})}});
    TrainOptions o = step1("weights");
    o.step_ckpt = weights;
    CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(1), Catch::Contains("is not a strata step checkpoint"));
  }
}

TEST_CASE("a diverging step stops naming the iteration and the last good checkpoint, writing nothing non-finite",
          "[cpu]") {
  test::TempDir out("trainer_divergence");
  const StepResult step0 = Trainer(quick_options(out.str(), "base"), nullptr).run_step(0);
  const std::string step0_bytes = read_text(step0.checkpoint);
  auto diverging = [&](const std::string& name) {
    TrainOptions o = quick_options(out.str(), name);
    o.step = 1;
    o.step_ckpt = step0.checkpoint;
    o.lr = {0.05, kDivergingLr};
    o.epochs = {1, 3};
    o.log_interval = 1;
    return o;
  };
  // No checkpoint of step 1 before the divergence: none is written, and step 0's is untouched.
  {
    Trainer trainer(diverging("no_ckpt"), nullptr);
    std::string message;
    try {
      trainer.run_step(1);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK_THAT(message, Catch::Contains("step 1, iteration") && Catch::Contains("the training diverged") &&
                            Catch::Contains("last good checkpoint: none of this step yet"));
    CHECK_FALSE(std::filesystem::exists(trainer.checkpoint_path(1)));
    CHECK(read_text(step0.checkpoint) == step0_bytes);
    // The log keeps the diverged interval, the one the message names (JSON has no NaN or Inf: the
    // writer spells them, and every line parses).
    std::istringstream log(read_text(trainer.log_path()));
    int64_t last_iteration = 0;
    for (std::string line; std::getline(log, line);) {
      const json::Value record = json::parse(line);
      if (record.at("event").as_string() == "train") last_iteration = record.at("iteration").as_int();
    }
    CHECK_THAT(message, Catch::Contains(cat("step 1, iteration ", last_iteration, ":")));
  }
  // A checkpoint after every iteration: the last one written before the divergence is named, and
  // it is the file left at the step's path, every tensor finite.
  {
    TrainOptions o = diverging("every_iteration");
    o.ckpt_interval = 1;
    Trainer trainer(o, nullptr);
    std::string message;
    try {
      trainer.run_step(1);
    } catch (const Error& e) {
      message = e.what();
    }
    INFO(message);
    const std::string path = trainer.checkpoint_path(1);
    const size_t named = message.find("last good checkpoint: " + path + " (iteration ");
    REQUIRE(named != std::string::npos);
    const Checkpoint kept = load_checkpoint(path);
    CHECK(message.find(cat(path, " (iteration ", kept.info.iteration, ")")) != std::string::npos);
    CHECK_FALSE(kept.info.complete);
    CHECK(first_nonfinite(kept.model).empty());
    CHECK(first_nonfinite(kept.optimizer).empty());
    CHECK(read_text(step0.checkpoint) == step0_bytes);
  }
}

TEST_CASE("batch-norm statistics that overflow while the loss stays finite stop the step, naming the tensor", "[cpu]") {
  // At lr 1e3 the activations grow until their batch variance overflows f32: running_var becomes
  // Inf while the normalised outputs, and so the loss, stay finite (measured: iteration 5).
  test::TempDir out("trainer_statistics_divergence");
  TrainOptions o = quick_options(out.str(), "overflow");
  o.lr = {1e3};
  o.log_interval = 1;
  Trainer trainer(o, nullptr);
  CHECK_THROWS_WITH(trainer.run_step(0), Catch::Contains("step 0, iteration ") &&
                                             Catch::Contains("the training diverged: a batch-norm statistic is not "
                                                             "finite: 'body.") &&
                                             Catch::Contains(".running_var' holds NaN or Inf") &&
                                             Catch::Contains("last good checkpoint: none of this step yet"));
  CHECK_FALSE(std::filesystem::exists(trainer.checkpoint_path(0)));
  // Each logged interval carries the gradients' global norm, read with the losses.
  std::istringstream log(read_text(trainer.log_path()));
  int records = 0;
  for (std::string line; std::getline(log, line);) {
    const json::Value record = json::parse(line);
    if (record.at("event").as_string() != "train") continue;
    ++records;
    if (records == 1) CHECK(record.at("grad_norm").as_double() > 0);
  }
  CHECK(records >= 2);

  // --detect-anomaly names the op: the in-place statistics update of an In-place ABN layer, whose
  // input was finite.
  o.name = "overflow_anomaly";
  o.detect_anomaly = true;
  CHECK_THROWS_WITH(Trainer(o, nullptr).run_step(0),
                    Catch::Contains("step 0, iteration ") &&
                        Catch::Contains("detect-anomaly: the forward of 'inplace_abn (running statistics update)' "
                                        "produced a NaN or an Inf") &&
                        Catch::Contains("its inputs were finite"));
}

TEST_CASE("a previous-step checkpoint of another task with the same classes is accepted (15-5 and 15-1)", "[cpu]") {
  test::TempDir out("trainer_shared_step0");
  const StepResult step0 = Trainer(quick_options(out.str(), "shared"), nullptr).run_step(0);
  TrainOptions o = quick_options(out.str(), "fifteen_one");
  o.task = "15-1";
  o.step = 1;
  o.step_ckpt = step0.checkpoint;
  const StepResult r = Trainer(o, nullptr).run_step(1);
  CHECK(r.trained);
  CHECK(load_checkpoint(r.checkpoint).info.task == "15-5s");
  CHECK(load_checkpoint(r.checkpoint).info.model.classes == std::vector<int64_t>{16, 1});
}

// ---- bad data -------------------------------------------------------------------------------------

TEST_CASE("a bad test label stops the run before step 0 trains, and --skip-bad leaves bad labels out of that run only",
          "[cpu]") {
  test::TempDir data_dir("trainer_bad_data");
  data::GenerateOptions g;
  g.classes = 20;
  g.train = 40;
  g.val = 12;
  g.size = 48;
  g.seed = 11;
  g.threads = 2;
  data::generate_dataset(data_dir.str(), g);
  test::TempDir out("trainer_bad");
  auto options = [&](const std::string& name, bool skip_bad) {
    TrainOptions o = e2e_options(data_dir.str(), out.str(), 7);
    o.name = name;
    o.crop_size = 32;
    o.epochs = {1};
    o.skip_bad = skip_bad;
    return o;
  };
  const data::Dataset train = data::Dataset::voc(data_dir.str(), "train_aug");
  const data::Dataset val = data::Dataset::voc(data_dir.str(), "val");
  const Task task = Task::create(train, "15-5");
  const std::vector<int64_t> clean_train =
      training_images(data::build_label_index(train, 2), task, 0, Protocol::overlapped);
  const std::vector<int64_t> clean_test = test_images(data::build_label_index(val, 2), task, 0);
  REQUIRE(clean_train.size() > 16);
  REQUIRE(clean_test.size() > 2);
  const int64_t bad_train = clean_train.front(), bad_test = clean_test.front();
  const std::string train_label = train.sample(bad_train).label, test_label = val.sample(bad_test).label;
  const std::string train_bytes = data::read_file_bytes(train_label), test_bytes = data::read_file_bytes(test_label);

  // A test label with a value outside 0..20 and 255: the run stops naming it before step 0 trains
  // (nothing trained, no checkpoint, no log), not after the step when it is evaluated.
  data::Image out_of_range = data::read_label(test_label);
  out_of_range.at(0, 0) = 40;
  write_file_atomically(test_label, data::encode_png(out_of_range));
  CHECK_THROWS_WITH(Trainer(options("strict", false), nullptr).run_step(0),
                    Catch::Contains("label map '" + test_label + "'") && Catch::Contains("value 40"));
  CHECK_FALSE(std::filesystem::exists(out.path() / "checkpoints"));
  CHECK_FALSE(std::filesystem::exists(out.path() / "logs"));

  // And a truncated training label. --skip-bad logs each once and leaves it out: one training image
  // fewer, and the evaluation counts exactly the test images that were not reported.
  write_file_atomically(train_label, train_bytes.substr(0, train_bytes.size() / 2));
  {
    test::CaptureStderr err;
    Trainer trainer(options("skip", true), nullptr);
    const StepResult r = trainer.run_step(0);
    CHECK(r.trained);
    CHECK(r.training_images == static_cast<int64_t>(clean_train.size()) - 1);
    CHECK(r.scores.images == static_cast<int64_t>(clean_test.size()) - 1);
    CHECK(err.count(cat("skipping sample ", bad_test, " (", val.sample(bad_test).stem, "): label map '", test_label,
                        "'")) == 1);
    CHECK(err.count(cat("skipping sample ", bad_train, " (", train.sample(bad_train).stem, "): cannot decode '",
                        train_label, "'")) == 1);
    CHECK(err.count("skipping sample") == 2);
    std::istringstream log(read_text(trainer.log_path()));
    int64_t logged_images = -1;
    for (std::string line; std::getline(log, line);) {
      const json::Value record = json::parse(line);
      if (record.at("event").as_string() == "result") logged_images = record.at("images").as_int();
    }
    CHECK(logged_images == r.scores.images);
  }

  // The test label fixed, a run without --skip-bad on the same root stops naming the training label
  // recorded by the --skip-bad run, instead of training on one image fewer.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  write_file_atomically(test_label, test_bytes);
  Trainer strict(options("strict_again", false), nullptr);
  CHECK_THROWS_WITH(strict.run_step(0), Catch::Contains("cannot decode '" + train_label + "'"));
  CHECK_FALSE(std::filesystem::exists(strict.checkpoint_path(0)));
}

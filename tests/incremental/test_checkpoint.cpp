// Step checkpoints, options and reports (incremental/checkpoint.h, options.h, report.h): metadata
// round trip, the file layout (model keys loadable as weights, optimizer and method prefixes),
// atomic writes, every compatibility check naming what differs, file names, the option table
// (every option parses and has help; allow-lists; bad values), the results CSV and the progress bar.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/ops/reduce.h"
#include "engine/safetensors.h"
#include "incremental/checkpoint.h"
#include "incremental/options.h"
#include "incremental/report.h"
#include "models/weights.h"
#include "tests/data/temp_dir.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;

namespace {

CheckpointInfo sample_info() {
  CheckpointInfo info;
  info.dataset = "voc";
  info.labels = 21;
  info.task = "15-5";
  info.step = 1;
  for (int c = 0; c <= 20; ++c) info.channel_order.push_back(c);
  info.model = models::small_model_config({16, 5});
  info.model.seed = 12;
  info.method = "MiB (unce, unkd x10, init_balanced)";
  info.loss_kd = 10;
  info.unce = info.unkd = info.init_balanced = true;
  info.alpha = 0.5;
  info.protocol = "overlapped";
  info.convention = "plop";
  info.epochs = 30;
  info.iterations_per_epoch = 89;
  info.batch_size = 24;
  info.crop_size = 512;
  info.lr = 0.001;
  info.seed = 42;
  info.epoch = 3;
  info.iteration = 300;
  info.complete = false;
  return info;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Checkpoint as_found(const CheckpointInfo& info) {
  Checkpoint c;
  c.path = "runs/checkpoints/x.safetensors";
  c.info = info;
  return c;
}

}  // namespace

TEST_CASE("checkpoint metadata round-trips every field", "[cpu]") {
  const CheckpointInfo info = sample_info();
  const Metadata m = info.to_metadata();
  CHECK(m.at("strata.checkpoint") == "1");
  CHECK(m.at("channel_order") == "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20");
  CHECK(m.at("classes") == "16,5");
  CHECK(m.at("model.blocks") == "1,1,1,1");
  const CheckpointInfo back = CheckpointInfo::from_metadata(m, "file");
  CHECK(back.to_metadata() == m);
  CHECK(back.model.blocks == std::vector<int>{1, 1, 1, 1});
  CHECK(back.model.width == 16);
  CHECK(back.model.head_channels == 64);
  CHECK(back.max_iterations() == 30 * 89);
  // A reference-size model keeps empty blocks (the depth's).
  CheckpointInfo reference = info;
  reference.model = models::ModelConfig{};
  reference.model.classes = {16, 5};
  const CheckpointInfo reference_back = CheckpointInfo::from_metadata(reference.to_metadata(), "file");
  CHECK(reference_back.model.blocks.empty());
  CHECK(reference_back.model.reference_size());

  Metadata missing = m;
  missing.erase("step");
  CHECK_THROWS_WITH(CheckpointInfo::from_metadata(missing, "some.safetensors"),
                    Catch::Contains("some.safetensors") && Catch::Contains("lacks 'step'"));
  Metadata garbled = m;
  garbled["iteration"] = "12x";
  CHECK_THROWS_WITH(CheckpointInfo::from_metadata(garbled, "f"), Catch::Contains("'iteration' is not an integer"));
}

TEST_CASE("a checkpoint file holds the model under its own names, the optimizer and method state prefixed", "[cpu]") {
  test::TempDir dir("checkpoint_file");
  CheckpointInfo info = sample_info();
  models::SegmentationModel model(info.model);
  optim::SGD sgd({{"all", model.named_parameters(), 0.1, 0.9, 1e-4, true}});
  Generator g(2);
  Tensor x = Tensor::randn({2, 32, 32, 3}, g);
  sum(model.forward(x).logits).backward();
  sgd.step();
  const std::string path = dir / "nested/checkpoints/15-5-voc_run_1.safetensors";
  save_checkpoint(path, info, model, &sgd, {{"importance.w", Tensor::ones({3})}});
  // Only the final file remains (written through a temporary and renamed).
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "nested/checkpoints")) {
    ++files;
    CHECK(entry.path().filename() == "15-5-voc_run_1.safetensors");
  }
  CHECK(files == 1);

  const Checkpoint c = load_checkpoint(path);
  CHECK(c.info.to_metadata() == info.to_metadata());
  CHECK(c.model.size() == model.state_dict().size());
  CHECK(c.optimizer.size() == model.named_parameters().size());
  CHECK(c.optimizer_metadata.at("sgd.steps") == "1");
  CHECK(c.method_state.count("importance.w") == 1);
  // The model part loads as a weights file would.
  models::SegmentationModel copy(info.model);
  models::load_weights(copy, c.model, models::LoadMode::full, path);
  CHECK(copy.state_dict().at("cls.1.weight").to_vector<float>() ==
        model.state_dict().at("cls.1.weight").to_vector<float>());
  // Classes that disagree with the model are refused before anything is written.
  CheckpointInfo wrong = info;
  wrong.model.classes = {16};
  CHECK_THROWS_WITH(save_checkpoint(dir / "other.safetensors", wrong, model, nullptr, {}),
                    Catch::Contains("classes per step 16,5"));
  CHECK_FALSE(std::filesystem::exists(dir / "other.safetensors"));

  CHECK_THROWS_WITH(load_checkpoint(dir / "absent.safetensors"), Catch::Contains("does not exist"));
  save_safetensors(dir / "weights.safetensors", {{"w", Tensor::ones({2})}});
  CHECK_THROWS_WITH(load_checkpoint(dir / "weights.safetensors"), Catch::Contains("not a strata step checkpoint"));
  save_safetensors(dir / "future.safetensors", {{"w", Tensor::ones({2})}}, {{"strata.checkpoint", "9"}});
  CHECK_THROWS_WITH(load_checkpoint(dir / "future.safetensors"), Catch::Contains("format version 9"));
}

TEST_CASE("a checkpoint holding NaN or Inf is never written, naming the first such tensor", "[cpu]") {
  test::TempDir dir("checkpoint_nonfinite");
  CheckpointInfo info = sample_info();
  models::SegmentationModel model(info.model);
  optim::SGD sgd({{"all", model.named_parameters(), 0.1, 0.9, 1e-4, true}});
  Generator g(3);
  sum(model.forward(Tensor::randn({2, 32, 32, 3}, g)).logits).backward();
  sgd.step();
  const std::string path = dir / "15-5-voc_run_1.safetensors";
  save_checkpoint(path, info, model, &sgd, {});
  const std::string good = read_bytes(path);

  // An infinite momentum buffer (the model itself finite).
  Metadata sgd_metadata;
  TensorMap momentum = sgd.state_dict(sgd_metadata);
  const std::string buffer = momentum.begin()->first;
  momentum[buffer] = Tensor::full(momentum.at(buffer).shape(), INFINITY);
  sgd.load_state_dict(momentum, sgd_metadata);
  CHECK_THROWS_WITH(save_checkpoint(path, info, model, &sgd, {}),
                    Catch::Contains("'optimizer." + buffer + "'") && Catch::Contains("not written"));
  CHECK(read_bytes(path) == good);
  CHECK_NOTHROW(save_checkpoint(path, info, model, nullptr, {}));

  // One NaN in a batch norm's running variance (a buffer, not a parameter), and one in a method state.
  std::string running_var;
  for (auto& [key, t] : model.state_dict()) {
    if (key.find("running_var") != std::string::npos) {
      running_var = key;
      t.data<float>()[t.numel() - 1] = NAN;
      break;
    }
  }
  REQUIRE_FALSE(running_var.empty());
  const std::string before = read_bytes(path);
  try {
    save_checkpoint(path, info, model, nullptr, {});
    FAIL("a NaN running variance was written");
  } catch (const NonFiniteCheckpoint& e) {
    CHECK(e.tensor() == running_var);
  }
  CHECK(read_bytes(path) == before);
  CHECK_THROWS_WITH(save_checkpoint(dir / "new.safetensors", info, models::SegmentationModel(info.model), nullptr,
                                    {{"importance", Tensor::full({3}, -INFINITY)}}),
                    Catch::Contains("'method.importance'"));
  CHECK_FALSE(std::filesystem::exists(dir / "new.safetensors"));
}

TEST_CASE("a checkpoint holding NaN or Inf is refused on loading, naming the tensor, unless allowed", "[cpu]") {
  test::TempDir dir("checkpoint_load_nonfinite");
  const CheckpointInfo info = sample_info();
  models::SegmentationModel model(info.model);
  const std::string path = dir / "15-5-voc_run_1.safetensors";
  save_checkpoint(path, info, model, nullptr, {});
  CHECK_NOTHROW(load_checkpoint(path));
  // The file of a writer without the guard (another tool, an older strata): one Inf in a weight.
  SafetensorsFile file = load_safetensors(path);
  const std::string key = file.tensors.begin()->first;
  Tensor& bad = file.tensors.at(key);
  bad.data<float>()[0] = INFINITY;
  save_safetensors(path, file.tensors, file.metadata);
  CHECK_THROWS_WITH(load_checkpoint(path),
                    Catch::Contains(path) && Catch::Contains("'" + key + "'") && Catch::Contains("--allow-nonfinite"));
  const Checkpoint allowed = load_checkpoint(path, NonFiniteTensors::allow);
  CHECK(std::isinf(allowed.model.at(key).to_vector<float>()[0]));
}

TEST_CASE("checkpoint checks name the field that differs, per use", "[cpu]") {
  const CheckpointInfo ours = sample_info();
  auto message = [&](const CheckpointInfo& theirs, CheckpointUse use) {
    try {
      check_checkpoint(as_found(theirs), ours, use);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(message(ours, CheckpointUse::resume) == "accepted");
  CHECK(message(ours, CheckpointUse::evaluate) == "accepted");
  CHECK_THAT(message(ours, CheckpointUse::previous_step), Catch::Contains("stopped at iteration 300 of 2670"));

  CheckpointInfo other = ours;
  other.dataset = "ade20k";
  other.labels = 151;
  CHECK_THAT(message(other, CheckpointUse::evaluate),
             Catch::Contains("its dataset is ade20k (151 labels) but this run's is voc (21 labels)"));
  other = ours;
  other.step = 0;
  CHECK_THAT(message(other, CheckpointUse::evaluate), Catch::Contains("its step is 0"));
  other = ours;
  other.task = "10-10";
  other.channel_order.resize(21);
  other.model.classes = {11, 10};
  CHECK_THAT(message(other, CheckpointUse::evaluate),
             Catch::Contains("its task is task 10-10 with classes 0..10 | 11..20") &&
                 Catch::Contains("task 15-5 with classes 0..15 | 16..20"));
  other = ours;
  std::swap(other.channel_order[16], other.channel_order[20]);
  CHECK_THAT(message(other, CheckpointUse::evaluate), Catch::Contains("its class order is"));
  other = ours;
  other.model.output_stride = 8;
  CHECK_THAT(message(other, CheckpointUse::evaluate), Catch::Contains("output stride 8"));
  other = ours;
  other.model.head_channels = 256;
  CHECK_THAT(message(other, CheckpointUse::evaluate), Catch::Contains("its model is mib head (256 channels"));

  // Same classes under another task name: fine for a previous step, not for a resume.
  other = ours;
  other.task = "15-5s";
  other.complete = true;
  CHECK(message(other, CheckpointUse::previous_step) == "accepted");
  CHECK_THAT(message(other, CheckpointUse::resume), Catch::Contains("its task is 15-5s"));
  // Method, schedule and seed matter only for a resume.
  other = ours;
  other.method = "FT (ce only)";
  other.lr = 0.01;
  CHECK(message(other, CheckpointUse::evaluate) == "accepted");
  CHECK_THAT(message(other, CheckpointUse::resume), Catch::Contains("its method is FT (ce only)"));
  other = ours;
  other.iterations_per_epoch = 90;
  CHECK_THAT(message(other, CheckpointUse::resume), Catch::Contains("iterations per epoch"));
  other = ours;
  other.batch_size = 12;
  CHECK_THAT(message(other, CheckpointUse::resume), Catch::Contains("its batch size is 12"));
  other = ours;
  other.convention = "mib";
  CHECK_THAT(message(other, CheckpointUse::resume), Catch::Contains("its convention is mib"));
}

TEST_CASE("checkpoint file names follow MiB's <task>-<dataset>_<name>_<step>", "[cpu]") {
  CHECK(checkpoint_file_name("15-5s", "voc", "Experiment", 3) == "15-5s-voc_Experiment_3.safetensors");
  CHECK(checkpoint_file_name("0..10/11,12", "voc", "my run", 0) == "0..10_11_12-voc_my_run_0.safetensors");
  CHECK(describe_channels({0, 1, 2, 3, 7, 9, 10}, {4, 3}) == "0..3 | 7,9,10");
  CHECK(describe_channels({0, 12, 9, 20}, {3, 1}) == "0,12,9 | 20");
}

TEST_CASE("every train option parses, has help, and bad ones are clear errors", "[cpu]") {
  TrainOptions o;
  REQUIRE(parse_train_options(
      {"--dataset", "ade20k", "--data-root", "/d", "--task", "100-10", "--step", "all", "--overlap", "--convention",
       "mib", "--backbone", "small", "--head", "mib", "--output-stride", "8", "--blocks", "1,2,1,1", "--width", "8",
       "--head-channels", "32", "--pooling", "0", "--method", "MiB", "--loss-kd", "100", "--loss-de", "2", "--unce",
       "--unkd", "--init-balanced", "--alpha", "0.5", "--lr", "0.01,0.001", "--epochs", "60,30", "--batch-size", "12",
       "--crop-size", "256", "--seed", "7", "--workers", "3", "--output", "out", "--name", "n", "--device", "cpu",
       "--log-interval", "5", "--val-interval", "2", "--ckpt-interval", "100", "--step-ckpt", "p.safetensors",
       "--ckpt", "c.safetensors", "--test", "--stop-after", "9", "--eval-full-image", "--eval-batch-size", "4",
       "--no-progress", "--no-tables", "--skip-bad", "--train-split", "tr", "--test-split", "te", "--weights", "w"},
      o));
  CHECK(o.dataset == "ade20k");
  CHECK(o.all_steps);
  CHECK(o.protocol == Protocol::overlapped);
  CHECK(o.convention == Convention::mib);
  CHECK(o.output_stride == 8);
  CHECK(o.blocks == std::vector<int>{1, 2, 1, 1});
  CHECK(o.width == 8);
  CHECK(o.head_channels == 32);
  CHECK(o.pooling == 0);
  CHECK(*o.method_overrides.loss_kd == 100);
  CHECK(*o.method_overrides.loss_de == 2);
  CHECK(*o.method_overrides.unce);
  CHECK(*o.method_overrides.unkd);
  CHECK(*o.method_overrides.init_balanced);
  CHECK(*o.method_overrides.alpha == 0.5);
  CHECK(o.lr == std::vector<double>{0.01, 0.001});
  CHECK(o.epochs == std::vector<int>{60, 30});
  CHECK(o.batch_size == 12);
  CHECK(o.crop_size == 256);
  CHECK(o.seed == 7);
  CHECK(o.workers == 3);
  CHECK(o.log_interval == 5);
  CHECK(o.val_interval == 2);
  CHECK(o.ckpt_interval == 100);
  CHECK(o.step_ckpt == "p.safetensors");
  CHECK(o.ckpt == "c.safetensors");
  CHECK(o.test);
  CHECK(o.stop_after == 9);
  CHECK(o.eval_full_image);
  CHECK(o.eval_batch_size == 4);
  CHECK_FALSE(o.progress);
  CHECK_FALSE(o.print_tables);
  CHECK(o.skip_bad);
  CHECK(o.train_split == "tr");
  CHECK(o.test_split == "te");
  CHECK(o.weights == "w");
  CHECK_FALSE(o.unfolded_teacher);  // the folded teacher unless asked
  CHECK_FALSE(o.detect_anomaly);
  TrainOptions unfolded;
  REQUIRE(parse_train_options(
      {"--unfolded-teacher", "--detect-anomaly", "--freeze-backbone", "--freeze-old-classifier"}, unfolded));
  CHECK(*unfolded.method_overrides.freeze_backbone);
  CHECK(*unfolded.method_overrides.freeze_old_classifier);
  CHECK(unfolded.unfolded_teacher);
  CHECK(unfolded.detect_anomaly);
  // LwF-MC's flags, MiB's --icarl* names with dashes.
  TrainOptions icarl;
  REQUIRE(parse_train_options(
      {"--method", "LwF-MC", "--icarl", "--icarl-importance", "2.5", "--icarl-disjoint", "--icarl-bkg"}, icarl));
  CHECK(icarl.method == "LwF-MC");
  CHECK(*icarl.method_overrides.icarl);
  CHECK(*icarl.method_overrides.icarl_importance == 2.5);
  CHECK(*icarl.method_overrides.icarl_disjoint);
  CHECK(*icarl.method_overrides.icarl_bkg);
  TrainOptions no_icarl;
  REQUIRE(parse_train_options({"--method", "MiB"}, no_icarl));
  CHECK_FALSE(no_icarl.method_overrides.icarl);
  CHECK_FALSE(no_icarl.method_overrides.icarl_importance);
  CHECK_FALSE(no_icarl.method_overrides.icarl_disjoint);
  CHECK_FALSE(no_icarl.method_overrides.icarl_bkg);
  // The LwF ablation log's knobs.
  TrainOptions knobs;
  REQUIRE(parse_train_options(
      {"--kd-temperature", "4", "--kd-loss", "kl", "--kd-exclude-background", "--loss-kd", "10"}, knobs));
  CHECK(*knobs.method_overrides.kd_temperature == 4);
  CHECK(*knobs.method_overrides.kd_loss == DistillationLoss::kl_divergence);
  CHECK(*knobs.method_overrides.kd_exclude_background);
  TrainOptions shared;
  REQUIRE(parse_train_options({"--share-stages", "2"}, shared));
  CHECK(*shared.method_overrides.share_stages == 2);
  for (const char* k : {"0", "5"}) {
    CHECK_THROWS_WITH(parse_train_options({"--share-stages", k}, shared),
                      Catch::Contains(std::string("--share-stages must be 1 to 4 (ResNet stages), got ") + k));
  }
  for (const auto& [text, loss] :
       {std::pair{"ce", DistillationLoss::cross_entropy}, std::pair{"l2", DistillationLoss::l2}}) {
    TrainOptions one;
    REQUIRE(parse_train_options({"--kd-loss", text}, one));
    CHECK(*one.method_overrides.kd_loss == loss);
  }
  TrainOptions step;
  REQUIRE(parse_train_options({"--step", "3", "--protocol", "disjoint"}, step));
  CHECK(step.step == 3);
  CHECK_FALSE(step.all_steps);
  CHECK(step.protocol == Protocol::disjoint);

  // Every option appears in the help with its text.
  const std::string help = train_options_help();
  for (const OptionSpec& spec : train_option_specs()) {
    INFO(spec.name);
    CHECK(help.find(spec.name) != std::string::npos);
    CHECK(std::string(spec.help).size() > 10);
  }
  CHECK_FALSE(parse_train_options({"--task", "x", "--help"}, o));
  // --method lists every preset with its reference; LwF-MC's flags name MiB's they come from.
  std::string texts;
  for (const OptionSpec& spec : train_option_specs()) texts += cat(spec.name, ": ", spec.help, "\n");
  for (const char* text : {"LwF-MC (one-hot BCE from step 0", "iCaRL's loss, Rebuffi et al. 2017",
                           "(MiB's --icarl_importance", "(MiB's --icarl_disjoint", "(MiB's --icarl_bkg)"}) {
    INFO(text);
    CHECK(texts.find(text) != std::string::npos);
  }

  TrainOptions bad;
  CHECK_THROWS_WITH(parse_train_options({"--tasks", "15-5"}, bad), Catch::Contains("unknown option '--tasks'"));
  CHECK_THROWS_WITH(parse_train_options({"--task"}, bad), Catch::Contains("--task needs a value"));
  CHECK_THROWS_WITH(parse_train_options({"--batch-size", "twelve"}, bad),
                    Catch::Contains("--batch-size expects an integer, got 'twelve'"));
  CHECK_THROWS_WITH(parse_train_options({"--lr", "0.01,x"}, bad), Catch::Contains("--lr expects a number, got 'x'"));
  CHECK_THROWS_WITH(parse_train_options({"--icarl-importance", "ten"}, bad),
                    Catch::Contains("--icarl-importance expects a number, got 'ten'"));
  CHECK_THROWS_WITH(parse_train_options({"--kd-loss", "mse"}, bad),
                    Catch::Contains("--kd-loss expects ce, kl or l2, got 'mse'"));
  CHECK_THROWS_WITH(parse_train_options({"--kd-temperature", "hot"}, bad),
                    Catch::Contains("--kd-temperature expects a number, got 'hot'"));
  CHECK_THROWS_WITH(parse_train_options({"--step", "one"}, bad), Catch::Contains("--step expects an integer"));
  CHECK_THROWS_WITH(parse_train_options({"--step", "-1"}, bad), Catch::Contains("--step must be >= 0"));
  CHECK_THROWS_WITH(parse_train_options({"--seed", "-3"}, bad), Catch::Contains("--seed must be >= 0"));
  CHECK_THROWS_WITH(parse_train_options({"--protocol", "sideways"}, bad), Catch::Contains("sideways"));
  // 0 means "the default" inside TrainOptions; on the command line a count or size below its range
  // is refused, naming the option and the range.
  for (const auto& [option, minimum] : std::vector<std::pair<std::string, std::string>>{{"--batch-size", ">= 1"},
                                                                                        {"--eval-batch-size", ">= 1"},
                                                                                        {"--crop-size", ">= 16"},
                                                                                        {"--stop-after", ">= 1"},
                                                                                        {"--epochs", ">= 1"},
                                                                                        {"--workers", ">= 1"},
                                                                                        {"--log-interval", ">= 1"},
                                                                                        {"--width", ">= 1"},
                                                                                        {"--head-channels", ">= 1"},
                                                                                        {"--blocks", ">= 1"}}) {
    INFO(option);
    CHECK_THROWS_WITH(parse_train_options({option, "0"}, bad),
                      Catch::Contains(option + " must be " + minimum + ", got 0"));
    CHECK_THROWS_WITH(parse_train_options({option, "-2"}, bad), Catch::Contains(option + " must be " + minimum));
  }
  for (const std::string option : {"--val-interval", "--ckpt-interval", "--pooling"}) {
    INFO(option);
    CHECK_THROWS_WITH(parse_train_options({option, "-1"}, bad), Catch::Contains(option + " must be >= 0, got -1"));
    TrainOptions zero;
    CHECK(parse_train_options({option, "0"}, zero));
  }

  // An allow-list (a per-setting binary's overrides) accepts and documents only those.
  const std::vector<std::string> allowed = {"--data-root", "--output"};
  TrainOptions preset;
  preset.task = "15-1";
  REQUIRE(parse_train_options({"--data-root", "/voc", "--output", "o"}, preset, allowed));
  CHECK(preset.task == "15-1");
  CHECK(preset.data_root == "/voc");
  CHECK_THROWS_WITH(parse_train_options({"--task", "19-1"}, preset, allowed),
                    Catch::Contains("option --task is not accepted here"));
  const std::string restricted = train_options_help(allowed);
  CHECK(restricted.find("--data-root") != std::string::npos);
  CHECK(restricted.find("--task") == std::string::npos);
}

TEST_CASE("train --help groups every option exactly once, a method's flags under the method and its code", "[cpu]") {
  std::map<std::string, int> seen;
  for (const OptionGroup& group : train_option_groups()) {
    for (const std::string& name : group.names) ++seen[name];
  }
  for (const OptionSpec& spec : train_option_specs()) {
    INFO(spec.name);
    CHECK(seen[spec.name] == 1);
  }
  CHECK(seen.size() == train_option_specs().size());  // no group names an option that does not exist

  // Titles head each group, in the full help only, each on one line; a method's flags follow its title.
  const std::string help = train_options_help();
  const size_t icarl_title = help.find("LwF-MC: iCaRL's loss (Rebuffi et al. 2017) as MiB's --icarl flags");
  const size_t mib_title = help.find("ILT (Michieli & Zanuttigh 2019), MiB (Cermelli et al. 2020): MiB's flags:\n");
  REQUIRE(icarl_title != std::string::npos);
  REQUIRE(mib_title != std::string::npos);
  CHECK(help.find("  --icarl-bkg", icarl_title) != std::string::npos);
  CHECK(help.find("  --unce", mib_title) < icarl_title);
  CHECK(help.find("data:\n  --dataset NAME") == 0);
  for (const OptionGroup& group : train_option_groups()) {
    INFO(group.title);
    CHECK(help.find(std::string(group.title) + ":\n") != std::string::npos);
  }
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    CHECK(line.size() <= 100);
  }
  const std::string restricted = train_options_help({"--data-root", "--device"});
  CHECK(restricted.find("data:") == std::string::npos);
  CHECK(restricted.find("  --data-root DIR") == 0);
  CHECK(restricted.find("  --device") != std::string::npos);
}

TEST_CASE("the resume hint of an interrupted run is its command with --step and --ckpt set", "[cpu]") {
  const std::vector<std::string> args = {"--data-root", "/data/my voc", "--step", "all", "--ckpt",   "old.safetensors",
                                         "--name",      "--ckpt",       "--lr",   "0.1", "--overlap"};
  TrainOptions o;
  REQUIRE(parse_train_options(args, o));
  REQUIRE(o.name == "--ckpt");  // an option's value is never read as an option
  const std::string ckpt = "runs/checkpoints/15-5-voc_it's_1.safetensors";
  CHECK(resume_hint("strata train", args, o, Interrupted(SIGTERM, "stopped", ckpt, 1), 2) ==
        "resume with: strata train --data-root '/data/my voc' --name --ckpt --lr 0.1 --overlap --step 1 --ckpt "
        "'runs/checkpoints/15-5-voc_it'\\''s_1.safetensors'\n"
        "then train the later steps one at a time: the same command with --step N for N = 2, without --ckpt\n");
  // The --name=value forms are replaced as the others.
  const std::vector<std::string> joined = {"--data-root=d", "--step=all", "--ckpt=old.safetensors", "--overlap"};
  TrainOptions j;
  REQUIRE(parse_train_options(joined, j));
  CHECK((j.all_steps && j.ckpt == "old.safetensors" && j.data_root == "d"));
  CHECK(resume_hint("strata train", joined, j, Interrupted(SIGTERM, "stopped", "c.safetensors", 0), 2) ==
        "resume with: strata train --data-root=d --overlap --step 0 --ckpt c.safetensors\n"
        "then train the later steps one at a time: the same command with --step N for N = 1..2, without --ckpt\n");
  // Step 3 of a run of every step (a per-setting binary's default), stopped before its first
  // iteration: it starts again, then the later ones.
  TrainOptions all;
  all.all_steps = true;
  CHECK(resume_hint("strata_voc_15-1_ov_mib", {"--data-root", "d"}, all, Interrupted(SIGINT, "stopped", "", 3), 5) ==
        "start the step again with: strata_voc_15-1_ov_mib --data-root d --step 3\n"
        "then train the later steps one at a time: the same command with --step N for N = 4..5, without --ckpt\n");
  // Nothing written and nothing trained before: the same command again.
  CHECK(resume_hint("strata_voc_15-1_ov_mib", {"--data-root", "d"}, all, Interrupted(SIGINT, "stopped", "", 0), 5) ==
        "nothing to resume: run strata_voc_15-1_ov_mib again with the same options\n");
  TrainOptions one;
  REQUIRE(parse_train_options({"--step", "3"}, one));
  CHECK(resume_hint("strata train", {"--step", "3"}, one, Interrupted(SIGINT, "stopped", "", 3), 5) ==
        "nothing to resume: run strata train again with the same options\n");
  CHECK(resume_hint("strata train", {"--test"}, one, Interrupted(SIGINT, "stopped"), 5) ==
        "nothing to resume: run strata train again with the same options\n");
}

TEST_CASE("the results CSV keeps one row per step, replaced when a step runs again, written atomically", "[cpu]") {
  test::TempDir dir("results_csv");
  const std::string path = dir / "results/15-5-voc_x.csv";
  {
    ResultsCsv csv(path);
    CHECK(csv.rows() == 0);
    csv.set_row(1, "1,0.5,0.25,0.375");
    csv.set_row(0, "0,0.75,x,0.75");
  }
  ResultsCsv again(path);
  CHECK(again.rows() == 2);
  CHECK(again.text() == "0,0.75,x,0.75\n1,0.5,0.25,0.375\n");
  again.set_row(1, "1,0.5,0.5,0.5");
  CHECK(ResultsCsv(path).text() == "0,0.75,x,0.75\n1,0.5,0.5,0.5\n");
  const ResultsAverage average = ResultsCsv(path).average();
  CHECK(average.rows == 2);
  CHECK(average.final_miou == 0.5);
  CHECK(average.average_miou == approx(0.625));
  CHECK_THROWS_WITH(again.set_row(2, "3,1,1"), Catch::Contains("the row of step 2"));
  std::ofstream(dir / "bad.csv") << "step,IoU_0\n";
  CHECK_THROWS_WITH(ResultsCsv(dir / "bad.csv"), Catch::Contains("bad.csv:1"));
}

TEST_CASE("progress lines show the bar, counts, epoch, ETA and stats, and durations and sizes read well", "[cpu]") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  ProgressBar bar(file, false);
  bar.start("step 1", 40, 10);
  bar.update(20, "epoch 2/4", "loss 0.5 lr 0.001", true);
  bar.finish();
  std::rewind(file);
  char buffer[512] = {};
  REQUIRE(std::fgets(buffer, sizeof(buffer), file) != nullptr);
  std::fclose(file);
  const std::string line = buffer;
  CHECK_THAT(line, Catch::StartsWith("step 1 [##########----------] 50% 20/40 epoch 2/4 ETA "));
  CHECK_THAT(line, Catch::EndsWith("| loss 0.5 lr 0.001\n"));
  CHECK(format_duration(7.2) == "7s");
  CHECK(format_duration(245) == "4:05");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(3 * 1024 * 1024) == "3.0 MiB");
  CHECK(format_bytes(int64_t{5} << 30) == "5.0 GiB");
}

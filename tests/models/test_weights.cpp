// Weights: saving and loading a model's state as safetensors (full, previous-step and backbone
// modes), the report of missing and unexpected keys, clear errors for wrong files, and the
// converter from PyTorch checkpoints (tools/convert_weights.py) end to end.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/weights.h"
#include "tests/support/torch_reference.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

models::ModelConfig small_config(models::Flavour flavour, std::vector<int64_t> classes = {21}, int depth = 50,
                                 uint64_t seed = 1) {
  models::ModelConfig config;
  config.flavour = flavour;
  config.depth = depth;
  config.classes = std::move(classes);
  config.seed = seed;
  config.initialize = false;  // values come from the seeded default init; loading is what is tested
  return config;
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / cat("strata_models_", ::getpid(), "_", name);
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// Every tensor of `model` equals the one of the same name in `expected`.
void check_state_equals(const models::SegmentationModel& model, const TensorMap& expected) {
  for (const auto& [key, t] : model.state_dict()) {
    INFO(key);
    auto it = expected.find(key);
    REQUIRE(it != expected.end());
    CHECK(same_values(t, it->second));
  }
}

// The tensors of `tensors` whose names start with `prefix`, without it.
TensorMap with_prefix_removed(const TensorMap& tensors, const std::string& prefix) {
  TensorMap out;
  for (const auto& [key, t] : tensors) {
    if (key.rfind(prefix, 0) == 0) out.emplace(key.substr(prefix.size()), t);
  }
  return out;
}

TensorMap copy_state(const models::SegmentationModel& model) {
  TensorMap out;
  for (const auto& [key, t] : model.state_dict()) out.emplace(key, t.clone());
  return out;
}

}  // namespace

TEST_CASE("save_weights then load_weights reproduces every tensor and describes the model", "[cpu]") {
  models::SegmentationModel a(small_config(models::Flavour::mib, {16, 5}, 50, 1));
  models::SegmentationModel b(small_config(models::Flavour::mib, {16, 5}, 50, 2));
  fs::path path = temp_path("roundtrip.safetensors");
  models::save_weights(a, path, {{"step", "1"}});
  CHECK_FALSE(same_values(a.state_dict().at("cls.1.weight"), b.state_dict().at("cls.1.weight")));
  models::WeightsReport report = models::load_weights(b, path);
  fs::remove(path);
  CHECK(report.keys.missing.empty());
  CHECK(report.keys.unexpected.empty());
  CHECK(report.keys.loaded.size() == a.state_dict().size());
  CHECK(report.metadata.at("flavour") == "mib");
  CHECK(report.metadata.at("depth") == "50");
  CHECK(report.metadata.at("norm") == "inplace_abn");
  CHECK(report.metadata.at("classes") == "16,5");
  CHECK(report.metadata.at("step") == "1");
  check_state_equals(b, a.state_dict());
}

TEST_CASE("load_weights in full mode lists missing and unexpected keys with the file name", "[cpu]") {
  models::SegmentationModel model(small_config(models::Flavour::mib));
  TensorMap state = copy_state(model);
  state.erase("head.red_bn.running_var");
  state.emplace("head.extra.weight", Tensor::zeros({3}));
  CHECK_THROWS_WITH(models::load_weights(model, state, models::LoadMode::full, "ckpt.safetensors"),
                    Catch::Contains("ckpt.safetensors") && Catch::Contains("1 missing: head.red_bn.running_var") &&
                        Catch::Contains("1 unexpected: head.extra.weight"));
}

TEST_CASE("load_weights in previous_step mode accepts only the newest steps' classifiers missing", "[cpu]") {
  models::SegmentationModel previous(small_config(models::Flavour::mib, {16}, 50, 3));
  models::SegmentationModel model(small_config(models::Flavour::mib, {16, 1}, 50, 4));
  TensorMap state = copy_state(previous);
  Tensor new_classifier = model.state_dict().at("cls.1.weight").clone();
  models::WeightsReport report = models::load_weights(model, state, models::LoadMode::previous_step, "step0");
  CHECK(report.keys.missing == std::vector<std::string>{"cls.1.bias", "cls.1.weight"});
  CHECK(report.keys.unexpected.empty());
  CHECK(same_values(model.state_dict().at("cls.0.weight"), state.at("cls.0.weight")));
  CHECK(same_values(model.state_dict().at("cls.1.weight"), new_classifier));  // kept its initialisation

  state.erase("body.mod3.block2.convs.bn2.weight");
  CHECK_THROWS_WITH(models::load_weights(model, state, models::LoadMode::previous_step, "step0"),
                    Catch::Contains("1 missing: body.mod3.block2.convs.bn2.weight"));
  CHECK_THROWS_WITH(models::load_weights(model, state, models::LoadMode::full, "step0"),
                    Catch::Contains("cls.1.weight"));
}

TEST_CASE("load_weights in backbone mode loads only the backbone and reports the rest", "[cpu]") {
  models::SegmentationModel source(small_config(models::Flavour::mib, {21}, 50, 5));
  models::SegmentationModel model(small_config(models::Flavour::mib, {16}, 50, 6));
  TensorMap head_before = copy_state(model);
  TensorMap state;
  for (const auto& [key, t] : source.state_dict()) {
    if (key.rfind("body.", 0) == 0) state.emplace(key, t);
  }
  state.emplace("classifier.fc.weight", Tensor::zeros({1000, 2048}));
  models::WeightsReport report = models::load_weights(model, state, models::LoadMode::backbone, "imagenet");
  CHECK(report.keys.missing.empty());
  CHECK(report.keys.unexpected == std::vector<std::string>{"classifier.fc.weight"});
  for (const auto& [key, t] : model.state_dict()) {
    INFO(key);
    bool backbone = key.rfind("body.", 0) == 0;
    CHECK(same_values(t, backbone ? source.state_dict().at(key) : head_before.at(key)));
  }
  state.erase("body.mod5.block3.convs.conv3.weight");
  CHECK_THROWS_WITH(models::load_weights(model, state, models::LoadMode::backbone, "imagenet"),
                    Catch::Contains("missing: body.mod5.block3.convs.conv3.weight"));
}

TEST_CASE("load_weights rejects a file of the other flavour or another depth or with wrong shapes", "[cpu]") {
  models::SegmentationModel mib50(small_config(models::Flavour::mib, {21}, 50, 7));
  models::SegmentationModel torchvision50(small_config(models::Flavour::torchvision, {21}, 50, 8));
  TensorMap before = copy_state(mib50);

  CHECK_THROWS_WITH(models::load_weights(mib50, torchvision50.state_dict(), models::LoadMode::full, "tv.safetensors"),
                    Catch::Contains("tv.safetensors") && Catch::Contains("torchvision-flavour model") &&
                        Catch::Contains("ResNet-50"));
  CHECK_THROWS_WITH(
      models::load_weights(mib50, torchvision50.state_dict(), models::LoadMode::backbone, "tv.safetensors"),
      Catch::Contains("torchvision-flavour model"));

  models::SegmentationModel mib101(small_config(models::Flavour::mib, {21}, 101, 9));
  CHECK_THROWS_WITH(models::load_weights(mib101, mib50.state_dict(), models::LoadMode::full, "r50.safetensors"),
                    Catch::Contains("r50.safetensors") && Catch::Contains("255 missing") &&
                        Catch::Contains("body.mod4.block10.convs.bn1.bias") && Catch::Contains("ResNet-101"));
  CHECK_THROWS_WITH(models::load_weights(mib50, mib101.state_dict(), models::LoadMode::full, "r101.safetensors"),
                    Catch::Contains("unexpected: body.mod4.block10"));

  models::SegmentationModel mib50_20(small_config(models::Flavour::mib, {20}, 50, 10));
  TensorMap wrong = copy_state(mib50_20);
  CHECK_THROWS_WITH(models::load_weights(mib50, wrong, models::LoadMode::full, "voc20.safetensors"),
                    Catch::Contains("voc20.safetensors") && Catch::Contains("'cls.0.bias' has shape [20]") &&
                        Catch::Contains("expects [21]"));
  check_state_equals(mib50, before);  // nothing half-loaded
}

TEST_CASE("load_weights names a truncated or missing file", "[cpu]") {
  models::SegmentationModel model(small_config(models::Flavour::mib, {21}, 50, 11));
  fs::path path = temp_path("truncated.safetensors");
  models::save_weights(model, path);
  fs::resize_file(path, fs::file_size(path) / 2);
  CHECK_THROWS_WITH(models::load_weights(model, path), Catch::Contains(path.string()));
  fs::remove(path);
  CHECK_THROWS_WITH(models::load_weights(model, path), Catch::Contains(path.string()));
}

TEST_CASE("a torchvision state dict's classifier.4 loads as cls.0", "[cpu]") {
  models::SegmentationModel source(small_config(models::Flavour::torchvision, {21}, 50, 12));
  TensorMap state;
  for (const auto& [key, t] : source.state_dict()) {
    std::string name = key.rfind("cls.0.", 0) == 0 ? "classifier.4." + key.substr(6) : key;
    state.emplace(name, t);
  }
  models::SegmentationModel model(small_config(models::Flavour::torchvision, {21}, 50, 13));
  models::WeightsReport report = models::load_weights(model, state, models::LoadMode::full, "torchvision");
  CHECK(report.renamed == std::vector<std::string>{"classifier.4.weight -> cls.0.weight",
                                                   "classifier.4.bias -> cls.0.bias"});
  check_state_equals(model, source.state_dict());

  models::SegmentationModel two_steps(small_config(models::Flavour::torchvision, {16, 5}, 50, 14));
  CHECK_THROWS_WITH(models::load_weights(two_steps, state, models::LoadMode::previous_step, "torchvision"),
                    Catch::Contains("has one classifier (classifier.4)"));
}

namespace {

struct CommandResult {
  int status;
  std::string output;
};

CommandResult run(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {status, output};
}

CommandResult convert(const fs::path& in, const fs::path& out) {
  return run(cat("'", test::python_executable(), "' '", test::source_dir(), "/tools/convert_weights.py' '",
                 in.string(), "' '", out.string(), "'"));
}

}  // namespace

TEST_CASE("convert_weights.py turns torchvision and MiB and ImageNet checkpoints into loadable files", "[torch]") {
  // One run of the checkpoint writer for every check below (no SECTIONs: each would rerun it).
  fs::path dir = temp_path("checkpoints");
  fs::create_directories(dir);
  CommandResult made = run(cat("'", test::python_executable(), "' '", test::source_dir(),
                               "/tools/torchref/models_checkpoints.py' '", dir.string(), "'"));
  INFO(made.output);
  REQUIRE(made.status == 0);

  {
    INFO("torchvision deeplabv3_resnet50 state dict");
    CommandResult c = convert(dir / "torchvision.pth", dir / "torchvision.safetensors");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK_THAT(c.output, Catch::Contains("kind torchvision"));
    models::ModelConfig config = small_config(models::Flavour::torchvision, {5});
    models::SegmentationModel model(config);
    models::WeightsReport report = models::load_weights(model, (dir / "torchvision.safetensors").string());
    CHECK(report.keys.unexpected.empty());
    CHECK(report.metadata.at("kind") == "torchvision");
    check_state_equals(model, load_safetensors(dir / "expected_torchvision.safetensors").tensors);
    // Round trip: what strata saves, PyTorch reads back as the original state dict (cls.0 is
    // torchvision's classifier.4).
    models::save_weights(model, (dir / "saved_by_strata.safetensors").string());
    CommandResult back = run(cat(
        "'", test::python_executable(), "' -c \"import sys, torch; from safetensors.torch import load_file; ",
        "a = load_file(sys.argv[1]); b = torch.load(sys.argv[2]); ",
        "a = {('classifier.4.' + k[6:] if k.startswith('cls.0.') else k): v for k, v in a.items()}; ",
        "bad = [k for k in b if k not in a or not torch.equal(a[k], b[k])]; ",
        "sys.exit(f'differ: {bad[:5]} extra: {sorted(set(a) - set(b))[:5]}' if bad or set(a) != set(b) else 0)\" '",
        (dir / "saved_by_strata.safetensors").string(), "' '", (dir / "torchvision.pth").string(), "'"));
    INFO(back.output);
    CHECK(back.status == 0);
  }
  {
    INFO("MiB step checkpoint (model_state, module. prefix)");
    CommandResult c = convert(dir / "mib_step.pth", dir / "mib_step.safetensors");
    INFO(c.output);
    REQUIRE(c.status == 0);
    models::SegmentationModel model(small_config(models::Flavour::mib, {4, 2}, 50));
    models::load_weights(model, (dir / "mib_step.safetensors").string());
    check_state_equals(model, load_safetensors(dir / "expected_mib_step.safetensors").tensors);
  }
  {
    INFO("inplace_abn ImageNet checkpoint (state_dict, module., classifier.fc)");
    CommandResult c = convert(dir / "imagenet_iabn.pth.tar", dir / "imagenet_iabn.safetensors");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK_THAT(c.output, Catch::Contains("dropped 2: classifier.fc.weight classifier.fc.bias"));
    models::SegmentationModel model(small_config(models::Flavour::mib, {4, 2}, 50));
    models::WeightsReport report =
        models::load_weights(model, (dir / "imagenet_iabn.safetensors").string(), models::LoadMode::backbone);
    CHECK(report.keys.unexpected.empty());
    CHECK(report.keys.missing.empty());
    TensorMap expected = load_safetensors(dir / "expected_mib_step.safetensors").tensors;
    for (const auto& [key, t] : model.state_dict()) {
      if (key.rfind("body.", 0) != 0) continue;
      INFO(key);
      CHECK(same_values(t, expected.at(key)));
    }
  }
  {
    INFO("torchvision ResNet ImageNet state dict (fc dropped)");
    CommandResult c = convert(dir / "torchvision_imagenet.pth", dir / "torchvision_imagenet.safetensors");
    INFO(c.output);
    REQUIRE(c.status == 0);
    models::SegmentationModel model(small_config(models::Flavour::torchvision, {5}));
    models::load_weights(model, (dir / "torchvision_imagenet.safetensors").string(), models::LoadMode::backbone);
    TensorMap expected = load_safetensors(dir / "expected_torchvision.safetensors").tensors;
    for (const auto& [key, t] : model.state_dict()) {
      if (key.rfind("backbone.", 0) != 0) continue;
      INFO(key);
      CHECK(same_values(t, expected.at(key)));
    }
  }
  {
    INFO("torchvision ResNet-18 ImageNet state dict (basic blocks; fc dropped) into --backbone resnet18");
    CommandResult c = convert(dir / "resnet18_imagenet.pth", dir / "resnet18.safetensors");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK_THAT(c.output, Catch::Contains("kind torchvision_imagenet") && Catch::Contains("dropped 2"));
    models::ModelConfig config;
    config.flavour = models::Flavour::torchvision;
    config.depth = 18;
    config.initialize = false;
    models::SegmentationModel model(config);
    models::WeightsReport report =
        models::load_weights(model, (dir / "resnet18.safetensors").string(), models::LoadMode::backbone);
    CHECK(report.keys.missing.empty());
    CHECK(report.keys.unexpected.empty());
    TensorMap expected = load_safetensors(dir / "expected_resnet18.safetensors").tensors;
    int64_t compared = 0;
    for (const auto& [key, t] : model.state_dict()) {
      if (key.rfind("backbone.", 0) != 0) continue;
      INFO(key);
      REQUIRE(expected.count(key));
      CHECK(same_values(t, expected.at(key)));
      ++compared;
    }
    CHECK(compared == static_cast<int64_t>(expected.size()));
  }
  {
    INFO("bad checkpoints: a clear error naming the file, no output");
    for (const char* name : {"truncated.pth", "not_a_checkpoint.pth", "missing.pth"}) {
      CommandResult c = convert(dir / name, dir / "bad.safetensors");
      INFO(c.output);
      CHECK(c.status != 0);
      CHECK_THAT(c.output, Catch::Contains("error") && Catch::Contains((dir / name).string()));
      CHECK_FALSE(fs::exists(dir / "bad.safetensors"));
    }
  }
  {
    INFO("bad output paths: a clear error naming the output, no traceback, nothing written");
    fs::create_directories(dir / "a_folder");
    for (const fs::path& out : {dir / "no_such_folder" / "w.safetensors", dir / "a_folder"}) {
      CommandResult c = convert(dir / "torchvision.pth", out);
      INFO(c.output);
      CHECK(c.status != 0);
      CHECK_THAT(c.output, Catch::Contains("convert_weights.py: error: " + out.string() + ": cannot write"));
      CHECK_THAT(c.output, !Catch::Contains("Traceback"));
    }
    CHECK_FALSE(fs::exists(dir / "no_such_folder"));
    CHECK(fs::is_empty(dir / "a_folder"));
  }
  fs::remove_all(dir);
}

TEST_CASE(
    "convert_weights.py turns a semseg PSPNet checkpoint into strata's PSPNet names, and the wrong architecture is "
    "refused naming keys",
    "[torch]") {
  // semseg saves {"epoch", "state_dict", "optimizer"} from a DataParallel model ("module." keys); the
  // state is tools/torchref/models_pspnet.py's, in semseg's own names.
  fs::path dir = temp_path("semseg");
  fs::create_directories(dir);
  const std::string semseg_state = test::torch_reference_dir() + "/models_pspnet/semseg_state.safetensors";
  CommandResult made = run(cat(
      "'", test::python_executable(), "' -c \"import sys, torch; from safetensors.torch import load_file; ",
      "s = load_file(sys.argv[1]); torch.save({'epoch': 50, 'state_dict': {'module.' + k: v for k, v in s.items()}, ",
      "'optimizer': {}}, sys.argv[2])\" '", semseg_state, "' '", (dir / "train_epoch_50.pth").string(), "'"));
  INFO(made.output);
  REQUIRE(made.status == 0);
  CommandResult c = convert(dir / "train_epoch_50.pth", dir / "pspnet.safetensors");
  INFO(c.output);
  REQUIRE(c.status == 0);
  CHECK_THAT(c.output, Catch::Contains("kind semseg_pspnet"));
  models::ModelConfig config;
  config.arch = models::Architecture::pspnet;
  config.depth = 50;
  config.output_stride = 8;
  config.initialize = false;
  models::SegmentationModel model(config);
  models::WeightsReport report = models::load_weights(model, (dir / "pspnet.safetensors").string());
  CHECK(report.keys.unexpected.empty());
  CHECK(report.keys.missing.empty());
  const TensorMap expected = with_prefix_removed(
      load_safetensors(test::torch_reference_dir() + "/models_pspnet/pspnet_resnet50_state.safetensors").tensors,
      "state.");
  check_state_equals(model, expected);
  // A MiB DeepLabV3 is not a PSPNet: the report names the architecture and the first keys.
  models::ModelConfig deeplab = small_config(models::Flavour::mib, {21}, 50);
  models::SegmentationModel other(deeplab);
  CHECK_THROWS_WITH(models::load_weights(other, (dir / "pspnet.safetensors").string()),
                    Catch::Contains("backbone.* keys and no body.* keys") && Catch::Contains("PSPNet"));
  fs::remove_all(dir);
}

TEST_CASE("convert_weights.py turns a DeepLabV3+ reference checkpoint into strata's DeepLabV3+ names", "[torch]") {
  fs::path dir = temp_path("deeplabv3plus");
  fs::create_directories(dir);
  const std::string group = test::torch_reference_dir() + "/models_deeplabv3plus/";
  // The reference saves {"epoch", "state_dict", "optimizer", "best_pred"}.
  CommandResult made = run(
      cat("'", test::python_executable(), "' -c \"import sys, torch; from safetensors.torch import load_file; ",
          "torch.save({'epoch': 1, 'state_dict': load_file(sys.argv[1]), 'optimizer': {}, ",
          "'best_pred': 0.5}, sys.argv[2])\" '", group, "deeplabv3plus_resnet50_os16_reference_state.safetensors' '",
          (dir / "checkpoint.pth.tar").string(), "'"));
  INFO(made.output);
  REQUIRE(made.status == 0);
  CommandResult c = convert(dir / "checkpoint.pth.tar", dir / "plus.safetensors");
  INFO(c.output);
  REQUIRE(c.status == 0);
  CHECK_THAT(c.output, Catch::Contains("kind deeplabv3plus"));
  models::ModelConfig config;
  config.arch = models::Architecture::deeplabv3plus;
  config.depth = 50;
  config.initialize = false;
  models::SegmentationModel model(config);
  models::WeightsReport report = models::load_weights(model, (dir / "plus.safetensors").string());
  CHECK(report.keys.unexpected.empty());
  CHECK(report.keys.missing.empty());
  check_state_equals(
      model,
      with_prefix_removed(load_safetensors(group + "deeplabv3plus_resnet50_os16_state.safetensors").tensors, "state."));
  fs::remove_all(dir);
}

TEST_CASE("convert_weights.py turns a BiSeNet v1 state dict into strata's names, with zero classifier biases",
          "[torch]") {
  fs::path dir = temp_path("bisenet");
  fs::create_directories(dir);
  const std::string group = test::torch_reference_dir() + "/models_bisenet/";
  // The reference saves the bare state dict; its classifiers have no bias, so drop the ones the
  // PyTorch model of tools/torchref carries (strata's layout) and expect zeros back.
  CommandResult made =
      run(cat("'", test::python_executable(), "' -c \"import sys, torch; from safetensors.torch import load_file; ",
              "s = load_file(sys.argv[1]); ",
              "torch.save({k: v for k, v in s.items() if not k.endswith('conv_out.bias')}, sys.argv[2])\" '", group,
              "bisenet_resnet18_reference_state.safetensors' '", (dir / "model_final.pth").string(), "'"));
  INFO(made.output);
  REQUIRE(made.status == 0);
  CommandResult c = convert(dir / "model_final.pth", dir / "bisenet.safetensors");
  INFO(c.output);
  REQUIRE(c.status == 0);
  CHECK_THAT(c.output, Catch::Contains("kind bisenet"));
  models::ModelConfig config;
  config.arch = models::Architecture::bisenet;
  config.depth = 18;
  config.output_stride = 32;
  config.initialize = false;
  models::SegmentationModel model(config);
  models::WeightsReport report = models::load_weights(model, (dir / "bisenet.safetensors").string());
  CHECK(report.keys.unexpected.empty());
  CHECK(report.keys.missing.empty());
  TensorMap expected =
      with_prefix_removed(load_safetensors(group + "bisenet_resnet18_state.safetensors").tensors, "state.");
  for (const char* bias : {"cls.0.bias", "aux16.cls.0.bias", "aux32.cls.0.bias"}) {
    expected.at(bias) = Tensor::zeros(expected.at(bias).shape());
  }
  check_state_equals(model, expected);
  fs::remove_all(dir);
}

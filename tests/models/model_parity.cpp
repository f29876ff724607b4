#include "tests/models/model_parity.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "models/weights.h"
#include "tests/support/compare.h"
#include "tests/support/torch_reference.h"

namespace strata::test {

SafetensorsFile load_model_case(const std::string& group, const std::string& name) {
  std::string path = torch_reference_dir() + "/" + group + "/" + name + ".safetensors";
  check(std::filesystem::exists(path), "PyTorch reference '", path,
        "' is missing: the ctest fixture torch_references writes it (run ctest, or tools/torch_reference.py ",
        torch_reference_dir(), " ", group, ")");
  return load_safetensors(path);
}

TensorMap with_prefix(const TensorMap& tensors, const std::string& prefix) {
  TensorMap out;
  for (const auto& [key, t] : tensors) {
    if (key.rfind(prefix, 0) == 0) out.emplace(key.substr(prefix.size()), t);
  }
  return out;
}

namespace {

const Tensor& tensor(const SafetensorsFile& file, const std::string& key, const std::string& what) {
  auto it = file.tensors.find(key);
  check(it != file.tensors.end(), "model case ", what, " has no tensor '", key, "'");
  return it->second;
}

}  // namespace

namespace {

double max_abs_difference(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]));
  return worst;
}

}  // namespace

void compare_body_head_and_low_res(ParityOptions& options) {
  options.forward.low_res_logits = true;
  options.forward.body = true;
  options.forward.head = true;
  options.check_outputs = [](const models::ForwardResult& result, const SafetensorsFile& expected) {
    const std::pair<const char*, const Tensor*> maps[] = {
        {"low_res", &result.low_res_logits}, {"body", &result.body}, {"head", &result.head}};
    for (const auto& [key, ours] : maps) {
      INFO(key);
      CHECK_CLOSE(*ours, tensor(expected, key, "the mode's case"), kF32);
    }
  };
}

void check_model_parity(models::SegmentationModel& model, const std::string& group, const std::string& name,
                        const ParityOptions& options) {
  const std::string mode_name = name + (options.training ? "_train" : "_eval");
  SafetensorsFile state = load_model_case(group, name + "_state");
  {
    models::WeightsReport report =
        models::load_weights(model, with_prefix(state.tensors, "state."), models::LoadMode::full, name + "_state");
    CHECK(report.keys.missing.empty());
    CHECK(report.keys.unexpected.empty());
  }
  Tensor x = tensor(state, "x", name);
  Tensor labels = tensor(state, "labels", name);
  TensorMap initial_buffers;
  for (const auto& [key, b] : model.named_buffers()) initial_buffers.emplace(key, b.clone());
  state.tensors.clear();

  SafetensorsFile expected = load_model_case(group, mode_name);
  INFO("PyTorch reference " << group << "/" << mode_name);
  models::ForwardOptions forward = options.forward;
  forward.aux_logits = options.aux;
  model.train(options.training);

  // float32: the precision users train in, judged against PyTorch's own float32 error.
  {
    autograd::NoGradGuard no_grad;
    models::ForwardResult result = model.forward(x, forward);
    const Tensor& truth = tensor(expected, "out", mode_name);
    double ours = max_abs_difference(result.logits, truth);
    double theirs = max_abs_difference(tensor(expected, "torch_f32.out", mode_name), truth);
    INFO("float32 logits: strata's largest error " << ours << ", PyTorch's " << theirs);
    CHECK(ours <= kF32ErrorBudgetVsPyTorch * theirs);
    // The training-mode forward moved the running statistics: start the float64 run from the state.
    for (const auto& [key, b] : model.named_buffers()) b.detach().copy_(initial_buffers.at(key));
  }

  // float64: the same math as the float64 reference, within the float32 tolerance.
  model.to(DType::f64);
  model.zero_grad();
  models::ForwardResult result = model.forward(x.to(DType::f64), forward);
  Tensor loss = cross_entropy(result.logits, labels, Reduction::mean_valid);
  if (options.aux) {
    for (const Tensor& aux : result.aux_logits) {
      loss = add(loss, scale(cross_entropy(aux, labels, Reduction::mean_valid), options.aux_weight));
    }
  }
  {
    INFO("logits");
    CHECK_CLOSE(result.logits, tensor(expected, "out", mode_name), kF32);
  }
  if (options.aux) {
    INFO("aux logits");
    for (size_t i = 0; i < result.aux_logits.size(); ++i) {
      INFO("aux head " << i);
      CHECK_CLOSE(result.aux_logits[i], tensor(expected, i == 0 ? "aux_out" : cat("aux_out", i + 1), mode_name), kF32);
    }
  }
  {
    INFO("loss");
    CHECK_CLOSE(loss, tensor(expected, "loss", mode_name), kF32);
  }
  if (options.check_outputs) options.check_outputs(result, expected);
  result = models::ForwardResult();
  loss.backward();

  auto reference_name = [&](const std::string& key) {
    for (const auto& [ours, theirs] : options.renamed) {
      if (key.rfind(ours, 0) == 0) return theirs + key.substr(ours.size());
    }
    return key;
  };
  int64_t compared = 0;
  for (const auto& [key, p] : model.named_parameters()) {
    INFO("gradient of " << key);
    REQUIRE(p.grad().defined());
    CHECK_CLOSE(p.grad(), tensor(expected, "grad." + reference_name(key), mode_name), kF32);
    ++compared;
  }
  int64_t reference_gradients = 0;
  for (const auto& [key, t] : expected.tensors) reference_gradients += key.rfind("grad.", 0) == 0;
  CHECK(compared == reference_gradients);
  if (options.training) {
    for (const auto& [key, b] : model.named_buffers()) {
      INFO("buffer after the forward: " << key);
      const Tensor& want = tensor(expected, "after." + reference_name(key), mode_name);
      if (b.dtype() == DType::i64) {
        CHECK(b.item() == want.item());
      } else {
        CHECK_CLOSE(b, want, kF32);
      }
    }
  }
}

}  // namespace strata::test

#include "models/weights.h"

#include <set>
#include <sstream>

namespace strata::models {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

const char* mode_name(LoadMode mode) {
  switch (mode) {
    case LoadMode::full: return "full";
    case LoadMode::previous_step: return "previous_step";
    case LoadMode::backbone: return "backbone";
  }
  return "?";
}

// The step index k of a "cls.{k}.*" key, or of an aux head's "<head>.cls.{k}.*" (PSPNet's aux,
// BiSeNet's aux16 and aux32), or -1.
int64_t classifier_step(const std::string& key) {
  const std::string cls = SegmentationModel::kClassifierPrefix;
  const size_t head_end = key.find('.');
  const std::string prefix =
      starts_with(key, cls) || head_end == std::string::npos ? cls : key.substr(0, head_end + 1) + cls;
  if (!starts_with(key, prefix)) return -1;
  size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos) return -1;
  try {
    return std::stoll(key.substr(prefix.size(), dot - prefix.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

std::string join_classes(const std::vector<int64_t>& classes) {
  std::ostringstream out;
  for (size_t i = 0; i < classes.size(); ++i) out << (i ? "," : "") << classes[i];
  return out.str();
}

}  // namespace

std::string WeightsReport::str() const {
  std::string s = cat(path, ": ", keys.str());
  if (!renamed.empty()) {
    s += "; renamed:";
    for (const std::string& r : renamed) s += " " + r;
  }
  return s;
}

WeightsReport load_weights(SegmentationModel& model, const std::string& path, LoadMode mode) {
  SafetensorsFile file = load_safetensors(path);
  WeightsReport report = load_weights(model, file.tensors, mode, path);
  report.metadata = std::move(file.metadata);
  return report;
}

WeightsReport load_weights(SegmentationModel& model, const TensorMap& tensors, LoadMode mode,
                           const std::string& source) {
  WeightsReport report;
  report.path = source;
  TensorMap state = tensors;
  const bool tv = model.config().flavour == Flavour::torchvision;
  const std::string where = cat("load_weights ", source, " (mode ", mode_name(mode), ")");

  // torchvision's DeepLabHead ends in classifier.4, strata's classifier is cls.0.
  if (tv && (state.count("classifier.4.weight") || state.count("classifier.4.bias"))) {
    check(model.classifier().steps() == 1, where, ": a torchvision state dict has one classifier (classifier.4), but ",
          "the model has ", model.classifier().steps(), " steps");
    check(!state.count("cls.0.weight") && !state.count("cls.0.bias"), where,
          ": the file has both classifier.4.* and cls.0.*");
    for (const char* leaf : {"weight", "bias"}) {
      auto it = state.find(cat("classifier.4.", leaf));
      if (it == state.end()) continue;
      state.emplace(cat("cls.0.", leaf), it->second);
      report.renamed.push_back(cat("classifier.4.", leaf, " -> cls.0.", leaf));
      state.erase(it);
    }
  }

  // A file with the other flavour's names is the wrong architecture, whatever the mode.
  const std::string own = model.backbone_prefix(), other = own == "body." ? "backbone." : "body.";
  int64_t own_keys = 0, other_keys = 0;
  for (const auto& [key, t] : state) {
    own_keys += starts_with(key, own);
    other_keys += starts_with(key, other);
  }
  bool pyramid = false;
  for (const auto& [key, t] : state) pyramid = pyramid || starts_with(key, "head.ppm.");
  const char* file_kind = own == "backbone." ? "mib-flavour" : pyramid ? "PSPNet" : "torchvision-flavour";
  check(own_keys > 0 || other_keys == 0, where, ": the file has ", other_keys, " ", other, "* keys and no ", own,
        "* keys: it holds a ", file_kind, " model, but the model is ", model.config().describe());

  std::set<std::string> model_keys;
  for (const auto& [key, t] : model.state_dict()) model_keys.insert(key);

  TensorMap accepted;
  nn::LoadReport& keys = report.keys;
  std::vector<std::string> ignored;
  for (const auto& [key, t] : state) {
    const bool wanted = mode != LoadMode::backbone || starts_with(key, own);
    if (!wanted) {
      ignored.push_back(key);
    } else if (model_keys.count(key)) {
      accepted.emplace(key, t);
    } else {
      keys.unexpected.push_back(key);
    }
  }
  int64_t file_steps = 0;
  for (const auto& [key, t] : state) file_steps = std::max(file_steps, classifier_step(key) + 1);
  for (const std::string& key : model_keys) {
    if (accepted.count(key)) continue;
    if (mode == LoadMode::backbone && !starts_with(key, own)) continue;
    keys.missing.push_back(key);
  }

  std::vector<std::string> disallowed_missing;
  for (const std::string& key : keys.missing) {
    const bool newer_step = mode == LoadMode::previous_step && classifier_step(key) >= file_steps && file_steps >= 1;
    if (!newer_step) disallowed_missing.push_back(key);
  }
  if (!disallowed_missing.empty() || !keys.unexpected.empty()) {
    nn::LoadReport problems;
    problems.missing = disallowed_missing;
    problems.unexpected = keys.unexpected;
    std::string hint;
    if (mode == LoadMode::previous_step && file_steps == 0) hint = " (the file has no cls.* classifier)";
    throw Error(cat(where, ": keys do not match the model ", model.config().describe(), ": ", problems.str(), hint));
  }
  // Shapes are validated for every key before anything is written (nn::Module::load_state_dict).
  nn::LoadReport loaded = model.load_state_dict(accepted, false, source);
  keys.loaded = loaded.loaded;
  keys.unexpected.insert(keys.unexpected.end(), ignored.begin(), ignored.end());
  return report;
}

void save_weights(const SegmentationModel& model, const std::string& path, const Metadata& extra) {
  const ModelConfig& config = model.config();
  Metadata metadata = extra;
  metadata["format"] = "strata segmentation model";
  metadata["arch"] = architecture_name(config.arch);
  metadata["flavour"] = flavour_name(config.flavour);
  metadata["depth"] = std::to_string(config.depth);
  metadata["norm"] = norm_name(config.resolved_norm());
  metadata["output_stride"] = std::to_string(config.output_stride);
  metadata["classes"] = join_classes(config.classes);
  if (!config.reference_size()) {
    std::vector<int64_t> blocks;
    for (int b : config.backbone_config().resolved_blocks()) blocks.push_back(b);
    metadata["blocks"] = join_classes(blocks);
    metadata["width"] = std::to_string(config.width);
    metadata["head_channels"] = std::to_string(config.resolved_head_channels());
  }
  save_safetensors(path, model.state_dict(), metadata);
}

}  // namespace strata::models

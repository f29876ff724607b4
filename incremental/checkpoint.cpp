#include "incremental/checkpoint.h"

#include <cmath>
#include <filesystem>
#include <sstream>
#include <utility>

#include "engine/finite.h"

namespace strata::incremental {

namespace {

const std::string kOptimizerPrefix = "optimizer.";
const std::string kMethodPrefix = "method.";

template <class T>
std::string join(const std::vector<T>& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  return out.str();
}

// Doubles as the shortest text that reads back to the same value.
std::string exact(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

class MetadataReader {
 public:
  MetadataReader(const Metadata& metadata, const std::string& source) : metadata_(metadata), source_(source) {}

  const std::string& text(const std::string& key) const {
    auto it = metadata_.find(key);
    check(it != metadata_.end(), source_, ": checkpoint metadata lacks '", key, "'");
    return it->second;
  }
  int64_t integer(const std::string& key) const {
    const std::string& value = text(key);
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == value.size() && !value.empty(), source_, ": checkpoint metadata '", key,
          "' is not an integer: '", value, "'");
    return v;
  }
  double real(const std::string& key) const {
    const std::string& value = text(key);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == value.size() && !value.empty(), source_, ": checkpoint metadata '", key, "' is not a number: '",
          value, "'");
    return v;
  }
  bool flag(const std::string& key) const {
    const std::string& value = text(key);
    check(value == "true" || value == "false", source_, ": checkpoint metadata '", key,
          "' is not true/false: '", value, "'");
    return value == "true";
  }
  std::vector<int64_t> integers(const std::string& key) const {
    const std::string& value = text(key);
    std::vector<int64_t> out;
    if (value.empty()) return out;
    std::stringstream in(value);
    std::string item;
    while (std::getline(in, item, ',')) {
      size_t used = 0;
      int64_t v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      check(used == item.size() && !item.empty(), source_, ": checkpoint metadata '", key,
            "' is not a list of integers: '", value, "'");
      out.push_back(v);
    }
    return out;
  }

 private:
  const Metadata& metadata_;
  const std::string& source_;
};

const char* flag_text(bool value) { return value ? "true" : "false"; }

bool safe_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

std::string sanitize(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (!safe_char(c)) c = '_';
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string architecture(const models::ModelConfig& c) {
  if (c.arch == models::Architecture::pspnet) {
    std::string bins;
    for (size_t i = 0; i < c.bins.size(); ++i) bins += cat(i ? "/" : "", c.bins[i]);
    return cat("PSPNet (", c.resolved_head_channels(), " channels, bins ", bins, ") on ", c.backbone_name(), ", ",
               models::norm_name(c.resolved_norm()), ", output stride ", c.output_stride);
  }
  models::ModelConfig shown = c;
  shown.classes.clear();
  std::array<int64_t, 3> rates = shown.resolved_rates();
  if (c.arch == models::Architecture::bisenet) {
    return cat("BiSeNet v1 (", c.resolved_head_channels(), " channels) on ", c.backbone_name(), ", ",
               models::norm_name(c.resolved_norm()), ", output stride ", c.output_stride);
  }
  if (c.arch == models::Architecture::deeplabv3plus) {
    return cat("DeepLabV3+ (", c.resolved_head_channels(), " channels, rates ", rates[0], "/", rates[1], "/", rates[2],
               ") on ", c.backbone_name(), ", ", models::norm_name(c.resolved_norm()), ", output stride ",
               c.output_stride);
  }
  return cat(models::flavour_name(c.flavour), " head (", c.resolved_head_channels(), " channels, rates ", rates[0], "/",
             rates[1], "/", rates[2], ", pooling ", c.pooling_size, ") on ", c.backbone_name(), ", ",
             models::norm_name(c.resolved_norm()), ", output stride ", c.output_stride);
}

}  // namespace

std::string describe_channels(const std::vector<int>& channel_order, const std::vector<int64_t>& classes_per_step) {
  std::ostringstream out;
  size_t channel = 0;
  for (size_t s = 0; s < classes_per_step.size(); ++s) {
    if (s) out << " | ";
    const size_t end = std::min(channel_order.size(), channel + static_cast<size_t>(classes_per_step[s]));
    // Consecutive runs print as ranges: "0..15".
    size_t i = channel;
    bool first = true;
    while (i < end) {
      size_t j = i;
      while (j + 1 < end && channel_order[j + 1] == channel_order[j] + 1) ++j;
      out << (first ? "" : ",") << channel_order[i];
      if (j > i) out << (j == i + 1 ? "," : "..") << channel_order[j];
      first = false;
      i = j + 1;
    }
    channel = end;
  }
  return out.str();
}

Metadata CheckpointInfo::to_metadata() const {
  Metadata m;
  m["strata.checkpoint"] = std::to_string(kCheckpointFormatVersion);
  m["dataset"] = dataset;
  m["labels"] = std::to_string(labels);
  m["task"] = task;
  m["step"] = std::to_string(step);
  m["channel_order"] = join(channel_order);
  m["classes"] = join(model.classes);
  m["model"] = architecture(model);
  m["model.arch"] = models::architecture_name(model.arch);
  m["model.flavour"] = models::flavour_name(model.flavour);
  m["model.depth"] = std::to_string(model.depth);
  m["model.blocks"] = join(model.backbone_config().resolved_blocks());
  m["model.width"] = std::to_string(model.width);
  m["model.head_channels"] = std::to_string(model.resolved_head_channels());
  m["model.output_stride"] = std::to_string(model.output_stride);
  m["model.norm"] = models::norm_name(model.resolved_norm());
  m["model.pooling"] = std::to_string(model.pooling_size);
  m["model.seed"] = std::to_string(model.seed);
  m["method"] = method;
  m["method.loss_kd"] = exact(loss_kd);
  m["method.loss_de"] = exact(loss_de);
  m["method.alpha"] = exact(alpha);
  m["method.unce"] = flag_text(unce);
  m["method.unkd"] = flag_text(unkd);
  m["method.init_balanced"] = flag_text(init_balanced);
  m["protocol"] = protocol;
  m["convention"] = convention;
  m["epochs"] = std::to_string(epochs);
  m["iterations_per_epoch"] = std::to_string(iterations_per_epoch);
  m["batch_size"] = std::to_string(batch_size);
  m["crop_size"] = std::to_string(crop_size);
  m["lr"] = exact(lr);
  m["seed"] = std::to_string(seed);
  if (!replay_images.empty()) {
    m["replay.images"] = replay_images;
    m["replay.ratio"] = exact(replay_ratio);
    m["replay.rows"] = std::to_string(replay_rows);
  }
  if (ranks != 1) m["ranks"] = std::to_string(ranks);
  m["epoch"] = std::to_string(epoch);
  m["iteration"] = std::to_string(iteration);
  m["complete"] = flag_text(complete);
  return m;
}

CheckpointInfo CheckpointInfo::from_metadata(const Metadata& metadata, const std::string& source) {
  MetadataReader r(metadata, source);
  CheckpointInfo info;
  info.dataset = r.text("dataset");
  info.labels = static_cast<int>(r.integer("labels"));
  info.task = r.text("task");
  info.step = static_cast<int>(r.integer("step"));
  for (int64_t c : r.integers("channel_order")) info.channel_order.push_back(static_cast<int>(c));
  info.model.classes = r.integers("classes");
  // Checkpoints written before PSPNet joined have no model.arch: they hold a DeepLabV3.
  if (metadata.count("model.arch")) info.model.arch = models::parse_architecture(r.text("model.arch"));
  info.model.flavour = models::parse_flavour(r.text("model.flavour"));
  info.model.depth = static_cast<int>(r.integer("model.depth"));
  std::vector<int64_t> blocks = r.integers("model.blocks");
  info.model.width = r.integer("model.width");
  info.model.head_channels = r.integer("model.head_channels");
  // Blocks equal to the depth's are stored but mean "the reference": keep the config canonical.
  std::vector<int> block_list(blocks.begin(), blocks.end());
  bool reference_blocks = false;
  try {
    reference_blocks = models::ResNet::blocks_per_stage(info.model.depth) == block_list;
  } catch (const Error&) {
    reference_blocks = false;
  }
  if (!reference_blocks) info.model.blocks = block_list;
  info.model.output_stride = static_cast<int>(r.integer("model.output_stride"));
  info.model.norm = models::parse_norm(r.text("model.norm"));
  info.model.pooling_size = r.integer("model.pooling");
  info.model.seed = static_cast<uint64_t>(r.integer("model.seed"));
  info.method = r.text("method");
  info.loss_kd = r.real("method.loss_kd");
  info.loss_de = r.real("method.loss_de");
  info.alpha = r.real("method.alpha");
  info.unce = r.flag("method.unce");
  info.unkd = r.flag("method.unkd");
  info.init_balanced = r.flag("method.init_balanced");
  info.protocol = r.text("protocol");
  info.convention = r.text("convention");
  info.epochs = static_cast<int>(r.integer("epochs"));
  info.iterations_per_epoch = r.integer("iterations_per_epoch");
  info.batch_size = static_cast<int>(r.integer("batch_size"));
  info.crop_size = static_cast<int>(r.integer("crop_size"));
  info.lr = r.real("lr");
  info.seed = static_cast<uint64_t>(r.integer("seed"));
  if (metadata.count("replay.images")) {
    info.replay_images = r.text("replay.images");
    info.replay_ratio = r.real("replay.ratio");
    info.replay_rows = static_cast<int>(r.integer("replay.rows"));
  }
  // Checkpoints of one process (and those written before data parallelism) have no "ranks".
  if (metadata.count("ranks")) info.ranks = static_cast<int>(r.integer("ranks"));
  check(info.ranks >= 1, "checkpoint metadata 'ranks' must be >= 1, got ", info.ranks);
  info.epoch = r.integer("epoch");
  info.iteration = r.integer("iteration");
  info.complete = r.flag("complete");
  return info;
}

std::string checkpoint_file_name(const std::string& task, const std::string& dataset, const std::string& name,
                                 int step) {
  return cat(sanitize(task), "-", sanitize(dataset), "_", sanitize(name), "_", step, ".safetensors");
}

NonFiniteCheckpoint::NonFiniteCheckpoint(const std::string& path, std::string tensor)
    : Error(cat("checkpoint ", path, " not written: its tensor '", tensor,
                "' holds a non-finite value (NaN or Inf); the file keeps its previous contents")),
      tensor_(std::move(tensor)) {}

void save_checkpoint(const std::string& path, const CheckpointInfo& info, const models::SegmentationModel& model,
                     const optim::SGD* optimizer, const TensorMap& method_state) {
  check(model.config().classes == info.model.classes, "save_checkpoint ", path, ": the model has classes per step ",
        join(model.config().classes), " but the checkpoint info says ", join(info.model.classes));
  TensorMap tensors = model.state_dict();
  Metadata metadata = info.to_metadata();
  if (optimizer != nullptr) {
    Metadata optimizer_metadata;
    for (auto& [key, t] : optimizer->state_dict(optimizer_metadata)) tensors.emplace(kOptimizerPrefix + key, t);
    for (auto& [key, value] : optimizer_metadata) metadata[kOptimizerPrefix + key] = value;
  }
  for (const auto& [key, t] : method_state) tensors.emplace(kMethodPrefix + key, t);
  std::string nonfinite = first_nonfinite(tensors);
  if (!nonfinite.empty()) throw NonFiniteCheckpoint(path, std::move(nonfinite));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    check(!error, "save_checkpoint: cannot create the folder ", parent.string(), ": ", error.message());
  }
  save_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path, NonFiniteTensors nonfinite) {
  check(std::filesystem::exists(path), "checkpoint ", path, " does not exist");
  SafetensorsFile file = load_safetensors(path);
  auto format = file.metadata.find("strata.checkpoint");
  check(format != file.metadata.end(), path, " is not a strata step checkpoint (no 'strata.checkpoint' in its ",
        "metadata; a weights file goes to --weights)");
  check(format->second == std::to_string(kCheckpointFormatVersion), path, ": checkpoint format version ",
        format->second, ", this strata reads version ", kCheckpointFormatVersion);
  Checkpoint out;
  out.path = path;
  out.info = CheckpointInfo::from_metadata(file.metadata, path);
  for (auto& [key, t] : file.tensors) {
    if (starts_with(key, kOptimizerPrefix)) {
      out.optimizer.emplace(key.substr(kOptimizerPrefix.size()), t);
    } else if (starts_with(key, kMethodPrefix)) {
      out.method_state.emplace(key.substr(kMethodPrefix.size()), t);
    } else {
      out.model.emplace(key, t);
    }
  }
  for (const auto& [key, value] : file.metadata) {
    if (starts_with(key, kOptimizerPrefix)) out.optimizer_metadata[key.substr(kOptimizerPrefix.size())] = value;
  }
  if (nonfinite == NonFiniteTensors::refuse) {
    const std::string bad = first_nonfinite(file.tensors);
    check(bad.empty(), "checkpoint ", path, ": tensor '", bad,
          "' holds a NaN or an Inf (the run that wrote it diverged); it is refused, and --allow-nonfinite loads it "
          "anyway to look at it");
  }
  return out;
}

void check_checkpoint(const Checkpoint& found, const CheckpointInfo& expected, CheckpointUse use) {
  const CheckpointInfo& f = found.info;
  const std::string& path = found.path;
  const char* purpose = use == CheckpointUse::previous_step ? "as the previous step's checkpoint"
                        : use == CheckpointUse::resume     ? "to resume (--ckpt)"
                                                            : "to evaluate";
  auto mismatch = [&](const std::string& what, const std::string& theirs, const std::string& ours) {
    throw Error(cat("checkpoint ", path, " cannot be used ", purpose, ": its ", what, " is ", theirs,
                    " but this run's is ", ours));
  };
  if (f.dataset != expected.dataset || f.labels != expected.labels) {
    mismatch("dataset", cat(f.dataset, " (", f.labels, " labels)"), cat(expected.dataset, " (", expected.labels,
                                                                           " labels)"));
  }
  if (f.step != expected.step) {
    mismatch("step", cat(f.step, " (task ", f.task, ")"), cat(expected.step, " (task ", expected.task, ")"));
  }
  if (f.channel_order != expected.channel_order || f.model.classes != expected.model.classes) {
    const std::string theirs = cat("task ", f.task, " with classes ", describe_channels(f.channel_order, f.model.classes),
                                   " at step ", f.step);
    const std::string ours = cat("task ", expected.task, " with classes ",
                                 describe_channels(expected.channel_order, expected.model.classes), " at step ",
                                 expected.step);
    mismatch(f.task != expected.task ? "task" : "class order", theirs, ours);
  }
  if (architecture(f.model) != architecture(expected.model)) {
    mismatch("model", architecture(f.model), architecture(expected.model));
  }
  if (use == CheckpointUse::previous_step) {
    check(f.complete, "checkpoint ", path, " cannot be used ", purpose, ": step ", f.step, " stopped at iteration ",
          f.iteration, " of ", f.max_iterations(), " (epoch ", f.epoch, " of ", f.epochs, "); finish it first (run ",
          "step ", f.step, " again with --ckpt ", path, ")");
  }
  if (use == CheckpointUse::resume) {
    if (f.task != expected.task) mismatch("task", f.task, expected.task);
    if (f.method != expected.method) mismatch("method", f.method, expected.method);
    if (f.protocol != expected.protocol) mismatch("protocol", f.protocol, expected.protocol);
    if (f.convention != expected.convention) mismatch("convention", f.convention, expected.convention);
    const auto replayed = [](const CheckpointInfo& i) { return i.replay_images.empty() ? "none" : i.replay_images; };
    if (f.replay_images != expected.replay_images) {
      mismatch("replayed image set (--replay-images)", replayed(f), replayed(expected));
    }
    if (f.replay_ratio != expected.replay_ratio) {
      mismatch("replay ratio (--replay-ratio)", f.replay_images.empty() ? "none" : exact(f.replay_ratio),
               expected.replay_images.empty() ? "none" : exact(expected.replay_ratio));
    }
    if (f.epochs != expected.epochs) mismatch("number of epochs", std::to_string(f.epochs), std::to_string(expected.epochs));
    if (f.ranks == expected.ranks && f.iterations_per_epoch != expected.iterations_per_epoch) {
      mismatch("iterations per epoch (training images / batch size)", std::to_string(f.iterations_per_epoch),
               std::to_string(expected.iterations_per_epoch));
    }
    // Another number of ranks makes epochs of another number of iterations: the step goes on from an
    // epoch's end only (resume_step moves the position to the same epoch's end in the new geometry).
    check(f.ranks == expected.ranks || f.iteration % f.iterations_per_epoch == 0, "checkpoint ", path,
          " cannot be used ", purpose, ": it was written by ", f.ranks, " data-parallel processes at iteration ",
          f.iteration, ", inside epoch ", f.epoch + 1, ", and this run has ", expected.ranks, "; resume it with ",
          f.ranks, " processes, or from a checkpoint of an epoch's end");
    if (f.batch_size != expected.batch_size) {
      mismatch("batch size", std::to_string(f.batch_size), std::to_string(expected.batch_size));
    }
    if (f.crop_size != expected.crop_size) {
      mismatch("crop size", std::to_string(f.crop_size), std::to_string(expected.crop_size));
    }
    if (f.lr != expected.lr) mismatch("learning rate", exact(f.lr), exact(expected.lr));
    if (f.seed != expected.seed) mismatch("seed", std::to_string(f.seed), std::to_string(expected.seed));
  }
}

}  // namespace strata::incremental

#include "incremental/inversion.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numbers>

#include "data/dataset.h"
#include "data/image.h"
#include "data/text.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/json.h"
#include "engine/nn/feature_statistics.h"
#include "engine/ops/argmax.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/ops/normalize.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shift.h"
#include "engine/ops/softmax.h"
#include "engine/optim/adam.h"
#include "incremental/checkpoint.h"
#include "incremental/metrics.h"
#include "incremental/report.h"
#include "incremental/task.h"
#include "kernels/common/shift.h"
#include "models/weights.h"

namespace strata::incremental {

namespace {

// DeepInversion's four neighbour differences (get_image_prior_losses) as spatial_difference offsets.
constexpr int64_t kTotalVariationOffsets[4][2] = {{0, 1}, {1, 0}, {-1, 1}, {1, 1}};

Tensor accumulate(const Tensor& total, const Tensor& term) { return total.defined() ? add(total, term) : term; }

// A seed for stream `stream` of `seed` (SplitMix64's finaliser), so that batches and images draw
// independent sequences.
uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void freeze(models::SegmentationModel& model) {
  for (auto& [name, parameter] : model.named_parameters()) {
    Tensor p = parameter;
    p.set_grad(Tensor());
    p.set_requires_grad(false);
  }
  model.eval();
}

// Fills rows [top, top + h) x columns [left, left + w) of a size x size map with `value`.
void fill_rectangle(std::vector<uint8_t>& map, int64_t size, int64_t top, int64_t left, int64_t h, int64_t w,
                    uint8_t value) {
  for (int64_t y = top; y < top + h; ++y) std::fill_n(map.begin() + y * size + left, w, value);
}

void draw_random_rectangle(std::vector<uint8_t>& map, int64_t size, double min_side, double max_side, uint8_t value,
                           std::mt19937_64& rng) {
  std::uniform_real_distribution<double> side(min_side, max_side);
  const int64_t h = std::clamp<int64_t>(std::llround(side(rng) * static_cast<double>(size)), 1, size);
  const int64_t w = std::clamp<int64_t>(std::llround(side(rng) * static_cast<double>(size)), 1, size);
  const int64_t top = std::uniform_int_distribution<int64_t>(0, size - h)(rng);
  const int64_t left = std::uniform_int_distribution<int64_t>(0, size - w)(rng);
  fill_rectangle(map, size, top, left, h, w, value);
}

}  // namespace

std::vector<uint8_t> jitter_targets(const std::vector<uint8_t>& targets, int64_t size, int64_t shift_h, int64_t shift_w,
                                    bool flip) {
  const int64_t pixels = size * size;
  check(size >= 1 && targets.size() % static_cast<size_t>(pixels) == 0, "jitter_targets: ", targets.size(),
        " values are not whole ", size, "x", size, " maps");
  std::vector<uint8_t> out(targets.size());
  for (size_t base = 0; base < targets.size(); base += static_cast<size_t>(pixels)) {
    for (int64_t h = 0; h < size; ++h) {
      for (int64_t w = 0; w < size; ++w) {
        out[base + static_cast<size_t>(h * size + w)] =
            targets[base + static_cast<size_t>(
                               kernels::common::roll_flip_source(h, w, size, size, shift_h, shift_w, flip, false))];
      }
    }
  }
  return out;
}

InversionLayout parse_inversion_layout(const std::string& text) {
  if (text == "whole") return InversionLayout::whole;
  if (text == "random") return InversionLayout::random;
  throw Error(cat("--layout '", text, "': expected whole or random"));
}

const char* inversion_layout_name(InversionLayout layout) {
  return layout == InversionLayout::whole ? "whole" : "random";
}

void InversionOptions::validate() const {
  check(size >= 8, "--size must be >= 8, got ", size);
  check(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  check(iterations >= 1, "--iterations must be >= 1, got ", iterations);
  check(warmup_iterations >= 0 && warmup_iterations < iterations, "--warmup-iterations must be in [0, --iterations ",
        iterations, "), got ", warmup_iterations);
  check(lr > 0, "--lr must be > 0, got ", lr);
  check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "--betas must be in [0, 1), got ", beta1, ", ", beta2);
  const std::pair<const char*, double> weights[] = {{"--main-loss-multiplier", main_loss_multiplier},
                                                    {"--r-feature", r_feature},
                                                    {"--first-bn-multiplier", first_bn_multiplier},
                                                    {"--tv-l1", tv_l1},
                                                    {"--tv-l2", tv_l2},
                                                    {"--l2", l2},
                                                    {"--adi-scale", adi_scale}};
  for (const auto& [name, value] : weights) {
    check(std::isfinite(value) && value >= 0, name, " must be a finite number >= 0, got ", value);
  }
  check(jitter >= 0, "--jitter must be >= 0, got ", jitter);
}

Tensor total_variation_l2(const Tensor& x) {
  Tensor total;
  for (const auto& offset : kTotalVariationOffsets) {
    total = accumulate(total, pow(sum(square(spatial_difference(x, offset[0], offset[1]))), 0.5));
  }
  return total;
}

Tensor total_variation_l1(const Tensor& x) {
  Tensor total;
  for (const auto& offset : kTotalVariationOffsets) {
    total = accumulate(total, mean(abs(spatial_difference(x, offset[0], offset[1]))));
  }
  return total;
}

Tensor image_l2_norm(const Tensor& x) {
  check(x.dim() >= 1 && x.size(0) >= 1, "image_l2_norm: expected a batch of images, got ", x.describe());
  const int64_t n = x.size(0);
  return mean(pow(sum_channels(square(x.contiguous().reshape({n, x.numel() / n}))), 0.5));
}

Tensor competition_loss(const Tensor& student_logits, const Tensor& teacher_logits, double temperature) {
  check(student_logits.shape() == teacher_logits.shape(), "competition_loss: the student's logits ",
        student_logits.describe(), " and the teacher's ", teacher_logits.describe(), " must have one shape");
  check(temperature > 0, "competition_loss: temperature must be > 0, got ", temperature);
  const Tensor p = softmax(scale(student_logits, 1.0 / temperature));
  const Tensor q = softmax(scale(teacher_logits, 1.0 / temperature));
  const Tensor m = clamp(scale(add(p, q), 0.5), 0.01, 0.99);
  const Tensor log_m = log(m);
  // KLDivLoss(reduction='batchmean')(log P, M) = sum M (log M - log P) / rows, a row per pixel.
  const double rows = static_cast<double>(p.numel() / std::max<int64_t>(1, p.size(-1)));
  auto kl = [&](const Tensor& probabilities) {
    return scale(sum(mul(m, sub(log_m, log(clamp(probabilities, 0.01, 0.99))))), 1.0 / rows);
  };
  const Tensor js = clamp(add(scale(kl(p), 0.5), scale(kl(q), 0.5)), 0.0, 1.0);
  return add(scale(js, -1.0), Tensor::full({}, 1.0, js.dtype(), js.device()));
}

double cosine_warmup_lr(double base, int iteration, int warmup, int iterations) {
  if (iteration < warmup) return base * (iteration + 1) / warmup;
  const double e = iteration - warmup, es = iterations - warmup;
  return 0.5 * (1 + std::cos(std::numbers::pi * e / es)) * base;
}

std::vector<uint8_t> inversion_target(InversionLayout layout, int channel, int channels, int64_t size, uint64_t seed,
                                      int64_t image) {
  check(channels >= 2 && channels <= 256 && channel >= 1 && channel < channels, "inversion_target: class channel ",
        channel, " outside 1..", channels - 1);
  const auto value = static_cast<uint8_t>(channel);
  if (layout == InversionLayout::whole) return std::vector<uint8_t>(static_cast<size_t>(size * size), value);
  std::vector<uint8_t> map(static_cast<size_t>(size * size), 0);
  std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(image)));
  if (channels > 2 && std::bernoulli_distribution(0.5)(rng)) {
    int other = std::uniform_int_distribution<int>(1, channels - 2)(rng);
    if (other >= channel) ++other;
    draw_random_rectangle(map, size, 0.2, 0.5, static_cast<uint8_t>(other), rng);
  }
  draw_random_rectangle(map, size, 0.4, 0.8, value, rng);
  return map;
}

DeepInversion::DeepInversion(models::SegmentationModel& teacher, models::SegmentationModel* student,
                             InversionOptions options)
    : teacher_(teacher), student_(student), options_(std::move(options)) {
  options_.validate();
  freeze(teacher_);
  channels_ = teacher_.classifier().total_classes();
  check(options_.adi_scale == 0 || student_ != nullptr, "--adi-scale ", options_.adi_scale,
        " needs a student model (--student CKPT)");
  if (student_ != nullptr) {
    check(student_ != &teacher_, "DeepInversion: the student must be another model than the teacher");
    freeze(*student_);
    check(student_->classifier().total_classes() >= channels_, "the student has ",
          student_->classifier().total_classes(), " classes, fewer than the teacher's ", channels_,
          ": the competition compares the teacher's classes");
  }
  recorder_ = std::make_unique<nn::NormInputRecorder>(teacher_);
}

DeepInversion::~DeepInversion() = default;

InversionLoss DeepInversion::loss(const Tensor& jittered_images, const Tensor& jittered_targets) {
  const InversionOptions& o = options_;
  InversionLoss l;
  recorder_->clear();
  const Tensor logits = teacher_.forward(jittered_images).logits;
  l.cross_entropy = cross_entropy(logits, jittered_targets, Reduction::mean_valid);
  l.feature = nn::feature_statistics_loss(recorder_->inputs(), o.first_bn_multiplier);
  recorder_->clear();
  l.tv_l1 = total_variation_l1(jittered_images);
  l.tv_l2 = total_variation_l2(jittered_images);
  l.l2 = image_l2_norm(jittered_images);
  l.total = scale(l.cross_entropy, o.main_loss_multiplier);
  l.total = add(l.total, scale(l.feature, o.r_feature));
  l.total = add(l.total, scale(l.tv_l2, o.tv_l2));
  l.total = add(l.total, scale(l.tv_l1, o.tv_l1));
  l.total = add(l.total, scale(l.l2, o.l2));
  if (o.adi_scale > 0) {
    l.competition = competition_loss(slice(student_->forward(jittered_images).logits, 0, channels_), logits);
    l.total = add(l.total, scale(l.competition, o.adi_scale));
  }
  return l;
}

InversionBatch DeepInversion::synthesize(const std::vector<uint8_t>& targets, int64_t batch_index,
                                         const std::function<void(int, const InversionTerms*)>& on_iteration,
                                         int report_every, const StopFlag* stop) {
  const InversionOptions& o = options_;
  const int64_t size = o.size, pixels = size * size;
  check(!targets.empty() && targets.size() % static_cast<size_t>(pixels) == 0, "DeepInversion: ", targets.size(),
        " target pixels are not whole ", size, "x", size, " maps");
  const int64_t batch = static_cast<int64_t>(targets.size()) / pixels;
  for (uint8_t t : targets) {
    check(t < channels_, "DeepInversion: target channel ", static_cast<int>(t), " but the teacher has ", channels_);
  }
  // A copy: named_parameters() returns a temporary map.
  const Tensor reference = teacher_.named_parameters().begin()->second;
  const Device device = reference.device();
  const DType dtype = reference.dtype();
  Generator noise(mix_seed(o.seed, 2 * static_cast<uint64_t>(batch_index)));
  std::mt19937_64 rng(mix_seed(o.seed, 2 * static_cast<uint64_t>(batch_index) + 1));
  Tensor x = Tensor::randn({batch, size, size, 3}, noise, dtype, device);
  x.set_requires_grad(true);
  optim::Adam adam({optim::AdamGroup{"images", {{"images", x}}, o.lr, o.beta1, o.beta2, 1e-8, 0, false}});

  // The range of normalised [0, 1] pixels per channel (NVlabs' clip): u = x * std + mean, clamped to
  // [0, 1], back as x = u / std - mean / std.
  std::vector<double> std_values(3), mean_values(3), inverse_std(3), shift(3);
  for (int c = 0; c < 3; ++c) {
    std_values[c] = kImageNetStd[c];
    mean_values[c] = kImageNetMean[c];
    inverse_std[c] = 1.0 / kImageNetStd[c];
    shift[c] = -static_cast<double>(kImageNetMean[c]) / kImageNetStd[c];
  }
  auto channel_vector = [&](const std::vector<double>& v) { return Tensor::from_vector(v, {3}).to(dtype).to(device); };
  const Tensor channel_std = channel_vector(std_values), channel_mean = channel_vector(mean_values);
  const Tensor to_normalised_scale = channel_vector(inverse_std), to_normalised_shift = channel_vector(shift);

  InversionBatch result;
  std::uniform_int_distribution<int64_t> jitter(-o.jitter, o.jitter);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int it = 0; it < o.iterations; ++it) {
    if (stop != nullptr && stop->requested() != 0) {
      throw Interrupted(stop->requested(), cat("inversion stopped at iteration ", it, " of batch ", batch_index + 1));
    }
    adam.groups()[0].lr = cosine_warmup_lr(o.lr, it, o.warmup_iterations, o.iterations);
    const int64_t shift_h = jitter(rng), shift_w = jitter(rng);
    const bool flip = coin(rng) > 0.5 && o.flip;
    const Tensor xj = roll_flip(x, shift_h, shift_w, flip);
    const Tensor labels =
        Tensor::from_vector(jitter_targets(targets, size, shift_h, shift_w, flip), {batch, size, size}, device);
    const InversionLoss l = loss(xj, labels);
    adam.zero_grad();
    l.total.backward();
    adam.step();
    if (o.clip) {
      autograd::NoGradGuard no_grad;
      const Tensor unit = clamp(add(mul(x.detach(), channel_std), channel_mean), 0.0, 1.0);
      x.copy_(add(mul(unit, to_normalised_scale), to_normalised_shift));
    }

    const bool first = it == 0, last = it + 1 == o.iterations;
    const bool read = first || last || (report_every > 0 && (it + 1) % report_every == 0);
    InversionTerms terms;
    if (read) {
      terms = {l.total.item(),
               l.cross_entropy.item(),
               l.feature.item(),
               l.tv_l1.item(),
               l.tv_l2.item(),
               l.l2.item(),
               l.competition.defined() ? l.competition.item() : 0.0};
      if (first) result.first = terms;
      if (last) result.last = terms;
    }
    if (on_iteration) on_iteration(it + 1, read ? &terms : nullptr);
  }

  autograd::NoGradGuard no_grad;
  result.images = x.detach();
  const Tensor predicted = argmax(teacher_.forward(result.images).logits).to(Device::cpu());
  for (int64_t v : predicted.to_vector<int64_t>()) result.predictions.push_back(static_cast<uint8_t>(v));
  return result;
}

namespace {

// The label space's names for the checkpoint: a class_names.txt when given, else the dataset kind's
// published names when the label count matches, else numbered names.
std::vector<std::string> label_space_names(const CheckpointInfo& info, const std::string& class_names_file) {
  std::vector<std::string> names;
  if (!class_names_file.empty()) {
    names = data::parse_class_names(data::read_file_bytes(class_names_file), class_names_file);
  } else if (info.dataset == "ade20k") {
    names = LabelSpace::ade20k().class_names;
  } else if (info.dataset == "coco") {
    names = LabelSpace::coco().class_names;
  } else if (info.labels == 21) {
    names = LabelSpace::voc().class_names;
  } else {
    names = LabelSpace::numbered(info.labels).class_names;
  }
  check(static_cast<int>(names.size()) == info.labels, class_names_file.empty() ? "the label space" : class_names_file,
        " names ", names.size(), " classes but the checkpoint's label space has ", info.labels);
  return names;
}

std::shared_ptr<models::SegmentationModel> load_model(const Checkpoint& checkpoint, const Device& device) {
  models::ModelConfig config = checkpoint.info.model;
  config.initialize = false;  // every parameter comes from the checkpoint
  auto model = std::make_shared<models::SegmentationModel>(config);
  models::load_weights(*model, checkpoint.model, models::LoadMode::full, checkpoint.path);
  model->to(device);
  return model;
}

// u8 RGB of normalised images (N,H,W,3) f32: round(clamp((x * std + mean) * 255, 0, 255)).
std::vector<data::Image> denormalise(const Tensor& images) {
  const Tensor host = images.to(Device::cpu()).contiguous();
  const std::vector<float> v = host.to_vector<float>();
  const int64_t n = host.size(0), h = host.size(1), w = host.size(2);
  std::vector<data::Image> out;
  for (int64_t i = 0; i < n; ++i) {
    data::Image image(static_cast<int>(h), static_cast<int>(w), 3);
    for (int64_t p = 0; p < h * w; ++p) {
      for (int c = 0; c < 3; ++c) {
        const float u = v[static_cast<size_t>((i * h * w + p) * 3 + c)] * kImageNetStd[c] + kImageNetMean[c];
        image.pixels[static_cast<size_t>(p * 3 + c)] =
            static_cast<uint8_t>(std::lround(std::clamp(u * 255.0f, 0.0f, 255.0f)));
      }
    }
    out.push_back(std::move(image));
  }
  return out;
}

std::string format_loss(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  write_file_atomically(path.string(), bytes);
}

json::Object options_record(const InvertSetOptions& options) {
  const InversionOptions& o = options.inversion;
  return {{"checkpoint", options.checkpoint},
          {"student", options.student},
          {"images_per_class", options.images_per_class},
          {"layout", inversion_layout_name(options.layout)},
          {"size", o.size},
          {"batch_size", o.batch_size},
          {"iterations", o.iterations},
          {"warmup_iterations", o.warmup_iterations},
          {"lr", o.lr},
          {"betas", json::Array{o.beta1, o.beta2}},
          {"main_loss_multiplier", o.main_loss_multiplier},
          {"r_feature", o.r_feature},
          {"first_bn_multiplier", o.first_bn_multiplier},
          {"tv_l1", o.tv_l1},
          {"tv_l2", o.tv_l2},
          {"l2", o.l2},
          {"adi_scale", o.adi_scale},
          {"jitter", o.jitter},
          {"flip", o.flip},
          {"clip", o.clip},
          {"seed", o.seed}};
}

// Removes the staging folder unless the run renamed it.
class StagingFolder {
 public:
  explicit StagingFolder(std::filesystem::path path) : path_(std::move(path)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~StagingFolder() {
    std::error_code ignored;
    if (!committed_) std::filesystem::remove_all(path_, ignored);
  }
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }
  void commit(const std::filesystem::path& target) {
    std::error_code ec;
    std::filesystem::remove(target, ec);  // an empty folder the user made; a non-empty one was refused
    std::filesystem::rename(path_, target);
    committed_ = true;
  }

 private:
  std::filesystem::path path_;
  bool committed_ = false;
};

}  // namespace

InvertSetReport invert_checkpoint(const InvertSetOptions& options, std::FILE* out, const StopFlag* stop) {
  const auto started = std::chrono::steady_clock::now();
  check(!options.checkpoint.empty(), "invert: --ckpt FILE is required (see --help)");
  check(!options.output.empty(), "invert: --output DIR is required (see --help)");
  check(options.images_per_class >= 1, "--images-per-class must be >= 1, got ", options.images_per_class);
  options.inversion.validate();
  check(options.inversion.adi_scale == 0 || !options.student.empty(), "--adi-scale ", options.inversion.adi_scale,
        " needs a student model (--student CKPT)");
  const std::filesystem::path target(options.output);
  check(
      !std::filesystem::exists(target) || (std::filesystem::is_directory(target) && std::filesystem::is_empty(target)),
      "--output ", options.output, " already exists and is not an empty folder: choose another or remove it");

  const Checkpoint teacher_checkpoint = load_checkpoint(options.checkpoint);
  const CheckpointInfo& info = teacher_checkpoint.info;
  const std::vector<std::string> names = label_space_names(info, options.class_names);
  const std::string device_text = options.device.empty() ? default_device_text() : options.device;
  const Device device = parse_device(device_text);
  auto teacher = load_model(teacher_checkpoint, device);
  std::shared_ptr<models::SegmentationModel> student;
  if (!options.student.empty()) {
    const Checkpoint student_checkpoint = load_checkpoint(options.student);
    check(student_checkpoint.info.dataset == info.dataset && student_checkpoint.info.labels == info.labels,
          "--student ", options.student, " is of label space ", student_checkpoint.info.dataset, " (",
          student_checkpoint.info.labels, " labels), the teacher ", options.checkpoint, " of ", info.dataset, " (",
          info.labels, ")");
    const size_t shared = std::min(student_checkpoint.info.channel_order.size(), info.channel_order.size());
    check(std::equal(info.channel_order.begin(), info.channel_order.begin() + static_cast<std::ptrdiff_t>(shared),
                     student_checkpoint.info.channel_order.begin()),
          "--student ", options.student, "'s channels do not start with the teacher's (",
          describe_channels(info.channel_order, info.model.classes), ")");
    student = load_model(student_checkpoint, device);
  }
  DeepInversion inversion(*teacher, student.get(), options.inversion);
  const int channels = static_cast<int>(inversion.channels());
  check(channels >= 2, options.checkpoint, " has no class besides background to invert");

  // Jobs: image j is of class channel 1 + j % (channels - 1), the classes interleaved so that every
  // batch mixes them (their batch statistics then resemble the training batches').
  const int classes = channels - 1;
  const int64_t total = static_cast<int64_t>(classes) * options.images_per_class;
  const int64_t size = options.inversion.size, batch_size = options.inversion.batch_size;
  const int64_t batches = (total + batch_size - 1) / batch_size;

  const std::filesystem::path staging = target.string() + ".tmp." + std::to_string(::getpid());
  StagingFolder folder(staging);
  ConfusionMatrix confusion(channels);
  InvertSetReport report;
  for (int c = 1; c < channels; ++c) report.channels.push_back(c);
  std::string list;
  ProgressBar bar(out != nullptr ? out : stderr, out != nullptr && options.progress && ::isatty(::fileno(out)));
  const bool show = out != nullptr && options.progress;
  if (show) bar.start("invert", batches * options.inversion.iterations, 0);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * batch_size, count = std::min(batch_size, total - first);
    std::vector<uint8_t> targets;
    targets.reserve(static_cast<size_t>(count * size * size));
    for (int64_t j = first; j < first + count; ++j) {
      const int channel = 1 + static_cast<int>(j % classes);
      const std::vector<uint8_t> map =
          inversion_target(options.layout, channel, channels, size, options.inversion.seed, j);
      targets.insert(targets.end(), map.begin(), map.end());
    }
    std::string stats;
    InversionBatch result = inversion.synthesize(
        targets, b,
        [&](int iteration, const InversionTerms* terms) {
          if (!show) return;
          if (terms != nullptr) {
            stats = cat("batch ", b + 1, "/", batches, " loss ", format_loss(terms->total), " ce ",
                        format_loss(terms->cross_entropy), " bn ", format_loss(terms->feature));
          }
          bar.update(b * options.inversion.iterations + iteration, "", stats);
        },
        20, stop);
    report.feature_first += result.first.feature / static_cast<double>(batches);
    report.feature_last += result.last.feature / static_cast<double>(batches);
    report.cross_entropy_first += result.first.cross_entropy / static_cast<double>(batches);
    report.cross_entropy_last += result.last.cross_entropy / static_cast<double>(batches);
    confusion.update(Tensor::from_vector(result.predictions, {count, size, size}),
                     Tensor::from_vector(targets, {count, size, size}));

    const std::vector<data::Image> images = denormalise(result.images);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = first + i;
      const int channel = 1 + static_cast<int>(j % classes);
      const std::string id = cat("inv_", info.channel_order.at(static_cast<size_t>(channel)), "_", j / classes);
      data::Image label(static_cast<int>(size), static_cast<int>(size), 1);
      for (int64_t p = 0; p < size * size; ++p) {
        label.pixels[static_cast<size_t>(p)] =
            static_cast<uint8_t>(info.channel_order.at(result.predictions[static_cast<size_t>(i * size * size + p)]));
      }
      write_file(staging / "JPEGImages" / (id + ".jpg"), data::encode_jpeg(images[static_cast<size_t>(i)], 95));
      write_file(staging / "SegmentationClassAug" / (id + ".png"), data::encode_png(label));
      list += cat("/JPEGImages/", id, ".jpg /SegmentationClassAug/", id, ".png\n");
    }
  }
  if (show) bar.finish();

  const SegmentationScores scores = compute_scores(confusion);
  report.images = total;
  report.iou = scores.iou;
  report.mean_iou = scores.mean_iou_over(0, channels);
  // The expected mean IoU of a labelling drawn uniformly from the C channels, from the target shares
  // s_c: class c's intersection is s_c / C of the pixels and its union s_c + 1 / C - s_c / C.
  {
    double sum = 0;
    int present = 0;
    const double all = static_cast<double>(scores.pixels);
    for (int c = 0; c < channels; ++c) {
      if (!scores.has_ground_truth(c)) continue;
      const double share = static_cast<double>(scores.ground_truth_pixels[static_cast<size_t>(c)]) / all;
      sum += (share / channels) / (share + 1.0 / channels - share / channels);
      ++present;
    }
    report.chance_mean_iou = present > 0 ? sum / present : 0.0;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::string class_names;
  for (const std::string& name : names) class_names += name + "\n";
  write_file(staging / "class_names.txt", class_names);
  json::Array iou;
  for (double v : report.iou) iou.emplace_back(std::isfinite(v) ? json::Value(v) : json::Value());
  json::Object record{{"strata.inversion", 1},
                      {"options", options_record(options)},
                      {"teacher_step", info.step},
                      {"task", info.task},
                      {"images", report.images},
                      {"teacher_iou", iou},
                      {"teacher_mean_iou", report.mean_iou},
                      {"chance_mean_iou", report.chance_mean_iou},
                      {"feature_loss_first", report.feature_first},
                      {"feature_loss_last", report.feature_last},
                      {"cross_entropy_first", report.cross_entropy_first},
                      {"cross_entropy_last", report.cross_entropy_last},
                      {"seconds", report.seconds}};
  write_file(staging / "inversion.json", json::dump(json::Value(record)) + "\n");
  write_file(staging / "splits" / "train.txt", list);
  folder.commit(target);
  return report;
}

}  // namespace strata::incremental

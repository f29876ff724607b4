#include "incremental/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "data/device_prefetcher.h"
#include "data/palette.h"
#include "engine/allocator.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "incremental/replay.h"
#include "incremental/step_checkpoints.h"
#include "models/weights.h"

namespace strata::incremental {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Loader randomness of a step: a mix of the run's seed and the step (splitmix64's finaliser), so
// steps draw different crops while every step stays a function of the seed.
uint64_t step_seed(uint64_t seed, int step) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(step) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool is_terminal(std::FILE* out) { return out != nullptr && isatty(fileno(out)) == 1; }

template <class T>
T per_step(const std::vector<T>& values, int step) {
  return values.at(std::min(values.size() - 1, static_cast<size_t>(step)));
}

std::string join_ints(const std::vector<int>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

}  // namespace

// One step's state while it trains.
struct Trainer::StepRun {
  StepSetup setup;
  StepResult result;
  std::vector<int64_t> subset;  // the step's training images
  int64_t iterations_per_epoch = 0;
  int64_t max_iterations = 0;
  CheckpointInfo info;          // what the step's checkpoints carry
  std::string previous_path;    // step t-1's checkpoint (step >= 1)
  std::unique_ptr<StepSession> session;
  int64_t iteration = 0;        // iterations of the step completed (resumed ones included)
  std::string resumed_from;
  CheckpointPolicy policy;
  std::unique_ptr<StepCheckpointWriter> checkpoints;
  bool interactive = false;     // the progress bar redraws one terminal line
  std::string shown = "starting";  // the progress bar's stats: those of the last logged interval
  Clock::time_point start;
};

Trainer::Trainer(TrainOptions options, std::FILE* out, distributed::Communicator* world)
    : options_(std::move(options)), out_(out), world_(world != nullptr && world->world_size() > 1 ? world : nullptr) {
  if (!main_rank()) out_ = nullptr;
  const TrainOptions& o = options_;
  check(!o.data_root.empty(), "--data-root is required (the dataset's folder)");
  check(!o.name.empty(), "--name must not be empty");
  check(o.workers >= 1, "--workers must be >= 1, got ", o.workers);
  check(o.log_interval >= 1, "--log-interval must be >= 1, got ", o.log_interval);
  check(o.val_interval >= 0, "--val-interval must be >= 0, got ", o.val_interval);
  check(o.ckpt_interval >= 0, "--ckpt-interval must be >= 0, got ", o.ckpt_interval);
  check(o.stop_after >= 0, "--stop-after must be >= 0, got ", o.stop_after);
  check(o.batch_size >= 0, "--batch-size must be >= 1, got ", o.batch_size);
  check(o.eval_batch_size >= 0, "--eval-batch-size must be >= 1, got ", o.eval_batch_size);
  check(o.crop_size == 0 || o.crop_size >= 16, "--crop-size must be >= 16, got ", o.crop_size);
  for (double lr : o.lr) check(std::isfinite(lr) && lr > 0, "--lr values must be > 0, got ", lr);
  for (int e : o.epochs) check(e >= 1, "--epochs values must be >= 1, got ", e);
  check(o.test || o.stop_after == 0 || !o.all_steps, "--stop-after stops one step: give --step N");
  check(o.ckpt.empty() || !o.all_steps, "--ckpt belongs to one step: give --step N");
  const std::string device_text = o.device.empty() ? default_device_text() : o.device;
  precision_ = o.precision.empty() ? default_precision(device_text) : parse_precision(o.precision);
  check_model_precision(precision_);
  device_ = parse_device(device_text, precision_);
  print(emulated_device_warning(device_, device_text));

  data::DatasetOptions dataset_options;
  dataset_options.skip_bad = o.skip_bad;
  const bool ade = o.dataset == "ade" || o.dataset == "ade20k", coco = o.dataset == "coco";
  check(ade || coco || o.dataset == "voc", "--dataset '", o.dataset, "': expected voc, ade20k (ade) or coco");
  const std::string split = !o.train_split.empty() ? o.train_split
                            : ade                  ? "training"
                            : coco                 ? "train2017"
                                                   : "train_aug";
  train_dataset_.emplace(data::Dataset::open(ade    ? "ade20k"
                                             : coco ? "coco"
                                                    : "voc",
                                             o.data_root, split, dataset_options));
  task_.emplace(Task::create(*train_dataset_, o.task));
  steps();  // validates --step
  setup(0);  // validates the model and method options before any work
  open_replay_set_if_asked();
  // The test split's labels are checked (from the label index cache) before any step trains: a bad
  // one stops the run here naming the file, or under --skip-bad is logged and left out of every
  // evaluation.
  test_index();
  if (!main_rank()) return;  // rank 0 alone writes logs and events
  log_ = JsonlLog(log_path());
  events_ = std::make_unique<EventFileWriter>(
      (std::filesystem::path(options_.output) / "logs" / cat(task_->name(), "-", dataset_name()) / options_.name)
          .string());
}

void Trainer::open_replay_set_if_asked() {
  const TrainOptions& o = options_;
  if (o.replay_images.empty()) {
    check(!o.replay_ratio, "--replay-ratio ", o.replay_ratio.value_or(0),
          " without --replay-images: give the image set to replay (a folder in the VOC layout)");
    return;
  }
  if (o.test) return;  // evaluation trains nothing: the set is not read
  for (int step : steps()) {
    check(step >= 1, "--replay-images ", o.replay_images, ": step 0 has no old classes to replay",
          o.all_steps ? " (--step all starts with it)" : "",
          "; train step 0 without it, then the later steps with --step N and --replay-images");
    setup(step);  // validates --replay-ratio against the step's batch size
  }
  replay_set_.emplace(open_replay_set(o.replay_images, o.skip_bad));
  replay_folder_ = std::filesystem::weakly_canonical(o.replay_images).string();
}

std::vector<int> Trainer::steps() const {
  if (!options_.all_steps) {
    task_->check_step(options_.step);
    return {options_.step};
  }
  std::vector<int> all;
  for (int s = 0; s < task_->num_steps(); ++s) all.push_back(s);
  return all;
}

std::string Trainer::dataset_name() const {
  switch (task_->labels().kind) {
    case data::DatasetKind::ade20k: return "ade";
    case data::DatasetKind::coco: return "coco";
    default: return "voc";
  }
}

std::string Trainer::checkpoint_path(int step) const {
  return (std::filesystem::path(options_.output) / "checkpoints" /
          checkpoint_file_name(task_->name(), dataset_name(), options_.name, step))
      .string();
}

std::string Trainer::log_path() const {
  std::string file = checkpoint_file_name(task_->name(), dataset_name(), options_.name, 0);
  file = file.substr(0, file.rfind("_0.safetensors")) + ".jsonl";
  return (std::filesystem::path(options_.output) / "logs" / file).string();
}

std::string Trainer::results_path() const {
  std::string file = checkpoint_file_name(task_->name(), dataset_name(), options_.name, 0);
  file = file.substr(0, file.rfind("_0.safetensors")) + ".csv";
  return (std::filesystem::path(options_.output) / "results" / file).string();
}

StepSetup Trainer::setup(int step) const {
  task_->check_step(step);
  const TrainOptions& o = options_;
  StepSetup s;
  s.step = step;
  std::vector<int64_t> classes;
  for (int c : task_->classes_per_step(step)) classes.push_back(c);
  s.model.classes = classes;
  s.model.arch = models::parse_architecture(o.arch);
  models::apply_backbone(s.model, o.backbone.empty() ? models::reference_backbone(s.model.arch) : o.backbone);
  s.model.flavour = models::parse_flavour(o.head);
  check(s.model.arch == models::Architecture::deeplabv3 || o.head == "mib", "--head ", o.head,
        " chooses a DeepLabV3 head; --arch ", o.arch, " has its own");
  s.model.output_stride = o.output_stride != 0 ? o.output_stride : models::reference_output_stride(s.model.arch);
  if (!o.norm.empty()) s.model.norm = models::parse_norm(o.norm);
  if (!o.blocks.empty()) s.model.blocks = o.blocks;
  if (o.width > 0) s.model.width = o.width;
  if (o.head_channels > 0) s.model.head_channels = o.head_channels;
  check(o.pooling >= 0, "--pooling must be >= 0, got ", o.pooling);
  s.model.pooling_size = o.pooling;
  s.model.seed = o.seed;
  s.model.resolved_rates();                     // validates the output stride
  s.model.backbone_config().resolved_blocks();  // validates blocks and width
  s.method = apply_overrides(method_preset(o.method, *task_, o.convention), o.method_overrides);
  s.method.fused_losses = !o.unfused_losses;
  check(s.model.arch != models::Architecture::deeplabv3plus || s.method.share_stages <= 1, "--share-stages ",
        s.method.share_stages, " with --arch deeplabv3plus: its decoder reads stage 1's output, which the student ",
        "does not compute when stages 1-2 or more are shared (use 1)");
  s.method.adapt_to(s.model);
  s.recipe = reference_recipe(*task_, step);
  if (!o.lr.empty()) s.recipe.lr = per_step(o.lr, step);
  if (!o.epochs.empty()) s.recipe.epochs = per_step(o.epochs, step);
  if (o.batch_size > 0) s.recipe.batch_size = o.batch_size;
  if (o.crop_size > 0) s.recipe.crop_size = o.crop_size;
  s.device = device_;
  s.seed = o.seed;
  s.teacher_forward = o.unfolded_teacher ? TeacherForward::unfolded : TeacherForward::folded;
  s.detect_anomaly = o.detect_anomaly;
  s.world = world_;
  s.sync_bn = o.sync_bn;
  // A captured step replays device work only: data parallelism's host collectives (MPI, the SyncBN
  // row counts) would be skipped, so several ranks run eagerly.
  s.cuda_graphs = o.cuda_graphs && world_ == nullptr;
  if (!o.replay_images.empty() && step >= 1) {
    s.replay = true;
    s.replay_rows = replay_rows(o.replay_ratio.value_or(kDefaultReplayRatio), s.recipe.batch_size);
  }
  return s;
}

CheckpointInfo Trainer::checkpoint_info(int step) const {
  const StepSetup s = setup(step);
  CheckpointInfo info;
  info.dataset = data::dataset_kind_name(task_->labels().kind);
  info.labels = task_->labels().num_classes();
  info.task = task_->name();
  info.step = step;
  info.channel_order = task_->channel_order(step);
  info.model = s.model;
  info.method = s.method.describe();
  info.loss_kd = s.method.loss_kd;
  info.loss_de = s.method.loss_de;
  info.alpha = s.method.alpha;
  info.unce = s.method.unce;
  info.unkd = s.method.unkd;
  info.init_balanced = s.method.init_balanced;
  info.protocol = protocol_name(options_.protocol);
  info.convention = convention_name(options_.convention);
  info.epochs = s.recipe.epochs;
  info.batch_size = s.recipe.batch_size;
  info.crop_size = s.recipe.crop_size;
  info.lr = s.recipe.lr;
  info.seed = options_.seed;
  info.ranks = ranks();
  if (s.replay) {
    info.replay_images = replay_folder_;
    info.replay_ratio = options_.replay_ratio.value_or(kDefaultReplayRatio);
    info.replay_rows = s.replay_rows;
  }
  return info;
}

void Trainer::print(const std::string& text) const {
  if (out_ == nullptr) return;
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

const data::Dataset& Trainer::test_dataset() {
  if (!test_dataset_) {
    data::DatasetOptions dataset_options;
    dataset_options.skip_bad = options_.skip_bad;
    const data::DatasetKind kind = task_->labels().kind;
    const bool ade = kind == data::DatasetKind::ade20k, coco = kind == data::DatasetKind::coco;
    const std::string split = !options_.test_split.empty() ? options_.test_split
                              : ade                        ? "validation"
                              : coco                       ? "val2017"
                                                           : "val";
    test_dataset_.emplace(
        data::Dataset::open(data::dataset_kind_name(kind), options_.data_root, split, dataset_options));
    check(test_dataset_->class_names() == train_dataset_->class_names(), "the test split '", split, "' of ",
          options_.data_root, " has ", test_dataset_->num_classes(), " classes, the training split ",
          train_dataset_->num_classes());
  }
  return *test_dataset_;
}

const data::LabelIndex& Trainer::test_index() {
  if (!test_index_) test_index_.emplace(data::load_label_index(test_dataset()));
  return *test_index_;
}

SegmentationScores Trainer::evaluate_step(models::SegmentationModel& model, int step, int64_t x, bool final,
                                          const std::string& previous_checkpoint) {
  const StepSetup s = setup(step);
  const std::vector<int64_t> subset = test_images(test_index(), *task_, step);
  check(!subset.empty(), "step ", step, " of task ", task_->name(), ": the test split has no image with a class ",
        "seen by this step");
  EvalOptions eval;
  eval.crop_size = s.recipe.crop_size;
  eval.batch_size = options_.eval_batch_size > 0 ? options_.eval_batch_size : s.recipe.batch_size;
  eval.full_image = options_.eval_full_image;
  eval.workers = options_.workers;
  eval.device = device_;
  eval.stop = stop_;
  eval.world = world_;
  // MiB's --sample_num images, spread evenly over the test images so every run draws the same ones.
  std::vector<EvalSample> samples;
  const size_t drawn = x >= 0 ? std::min(subset.size(), static_cast<size_t>(options_.sample_num)) : 0;
  for (size_t k = 0; k < drawn; ++k) eval.sample_indices.push_back(subset[k * subset.size() / drawn]);
  // --save-predictions: every image of a final evaluation as a strip in <folder>/step<k>/, with the
  // previous step's prediction when its checkpoint is there.
  const bool save = final && !options_.save_predictions.empty();
  const PredictionPicture picture = prediction_picture(step);
  const std::filesystem::path folder = std::filesystem::path(options_.save_predictions) / cat("step", step);
  std::optional<models::SegmentationModel> previous;
  if (save) {
    std::error_code error;
    std::filesystem::create_directories(folder, error);
    check(!error, "--save-predictions: cannot create the folder ", folder.string(), " (", error.message(), ")");
    if (step > 0 && std::filesystem::exists(previous_checkpoint)) {
      const Checkpoint checkpoint = load_checkpoint(previous_checkpoint, nonfinite_tensors());
      models::ModelConfig config = checkpoint.info.model;
      config.initialize = false;
      previous.emplace(config);
      models::load_weights(*previous, checkpoint.model, models::LoadMode::full, previous_checkpoint);
      previous->to(device_);
      eval.teacher = &*previous;
    } else if (step > 0) {
      print(cat("  --save-predictions: no previous-step column (", previous_checkpoint, " does not exist)\n"));
    }
  }
  int64_t written = 0;
  if (drawn > 0 || save) {
    eval.every_sample = save;
    eval.on_sample = [&](EvalSample&& sample) {
      if (save) {
        const std::string path = (folder / (test_dataset().sample(sample.index).stem + ".png")).string();
        write_file_atomically(path, data::encode_png(prediction_strip(sample, picture)));
        ++written;
      }
      if (std::find(eval.sample_indices.begin(), eval.sample_indices.end(), sample.index) !=
          eval.sample_indices.end()) {
        sample.teacher_prediction = data::Image();  // TensorBoard's strips: MiB's three panels
        samples.push_back(std::move(sample));
      }
    };
  }
  ProgressBar bar(options_.progress ? out_ : nullptr, is_terminal(out_));
  const SegmentationScores scores =
      evaluate_model(model, test_dataset(), subset, test_label_table(*task_, step, options_.convention),
                     task_->num_channels(step), eval, is_terminal(out_) ? &bar : nullptr);
  if (save) print(cat("  ", written, " prediction images in ", folder.string(), "\n"));
  add_sample_images(samples, eval.sample_indices, step, x);
  return scores;
}

PredictionPicture Trainer::prediction_picture(int step) const {
  PredictionPicture picture;
  picture.palette = &data::dataset_palette(train_dataset_->kind());
  picture.raw = task_->channel_order(step);
  picture.names = task_->channel_names(step);
  picture.overlay = options_.overlay;
  return picture;
}

// Each sample as one strip, image | labels | prediction (MiB's Sample_k) with the legend of
// incremental/prediction_images.h.
void Trainer::add_sample_images(const std::vector<EvalSample>& samples, const std::vector<int64_t>& order, int step,
                                int64_t x) {
  if (samples.empty() || !events_) return;
  const PredictionPicture picture = prediction_picture(step);
  for (const EvalSample& sample : samples) {
    const data::Image strip = prediction_strip(sample, picture);
    const auto k = std::find(order.begin(), order.end(), sample.index) - order.begin();
    events_->add_image(cat("Sample_", k, "/", step), data::encode_png(strip), strip.height, strip.width, 3, x);
  }
  events_->flush();
}

// MiB's Val_/T_ scalars (Overall_Acc, MeanIoU, MeanAcc), the old/new/all means in both conventions
// and each channel's IoU by class name, tagged "<prefix><name>/<step>" at `x`.
void Trainer::add_score_scalars(const std::string& prefix, const SegmentationScores& scores, const StepMeans& means,
                                int step, int64_t x) {
  if (!events_) return;
  const std::string suffix = cat("/", step);
  auto add = [&](const std::string& name, double value) {
    if (std::isfinite(value)) events_->add_scalar(prefix + name + suffix, value, x);
  };
  add("Overall_Acc", scores.pixel_accuracy);
  add("MeanIoU", scores.mean_iou);
  add("MeanAcc", scores.mean_class_accuracy);
  add("MeanIoU_old", means.old_with_background);
  add("MeanIoU_new", means.new_with_background);
  add("MeanIoU_all", means.all_with_background);
  add("MeanIoU_old_no_bg", means.old_without_background);
  add("MeanIoU_new_no_bg", means.new_without_background);
  add("MeanIoU_all_no_bg", means.all_without_background);
  const std::vector<std::string> names = task_->channel_names(step);
  for (int c = 0; c < scores.num_classes(); ++c) {
    std::string name = names.at(static_cast<size_t>(c));
    std::replace(name.begin(), name.end(), ' ', '_');  // "potted plant": tags without spaces, as tf.summary's
    if (scores.has_ground_truth(c)) add(cat("Class_IoU/", name), scores.iou[static_cast<size_t>(c)]);
  }
  events_->flush();
}

void Trainer::report_scores(StepResult& result, const std::string& what) {
  result.means = step_means(result.scores, *task_, result.step);
  if (!main_rank()) return;
  add_score_scalars("T_", result.scores, result.means, result.step, result.step);
  ResultsCsv csv(results_path());
  csv.set_row(result.step, results_csv_row(result.step, result.scores, *task_));
  const ResultsAverage average = csv.average();
  log_.write(joined(json::Object{{"event", "result"}, {"step", result.step}, {"what", what}},
                    joined(scores_record(result.scores, result.means),
                           json::Object{{"results_csv", csv.path()},
                                        {"average_miou_over_steps", number_or_null(average.average_miou)},
                                        {"steps_in_csv", static_cast<int64_t>(average.rows)}})));
  if (options_.print_tables) print(format_scores(result.scores, *task_, result.step));
  print(format_step_scores(result.step, what, result.scores, result.means));
  print(format_results_average(csv.path(), average));
}

StepResult Trainer::evaluate_checkpoint(int step) {
  const std::string path = options_.ckpt.empty() ? checkpoint_path(step) : options_.ckpt;
  check(std::filesystem::exists(path), "--test: the checkpoint of step ", step, " of task ", task_->name(), ", ", path,
        ", does not exist (train the step first, or pass --ckpt FILE)");
  Checkpoint checkpoint = load_checkpoint(path, nonfinite_tensors());
  check_checkpoint(checkpoint, checkpoint_info(step), CheckpointUse::evaluate);
  models::ModelConfig config = checkpoint.info.model;
  config.initialize = false;
  models::SegmentationModel model(config);
  models::load_weights(model, checkpoint.model, models::LoadMode::full, path);
  model.to(device_);
  StepResult result;
  result.step = step;
  result.checkpoint = path;
  print(cat("step ", step, ": evaluating ", path, " (", checkpoint.info.method, ", ",
            checkpoint.info.complete ? "complete" : cat("stopped at iteration ", checkpoint.info.iteration), ")\n"));
  reset_peak_memory(device_);
  const auto start = Clock::now();
  try {
    const std::string previous = step == 0                    ? std::string()
                                 : options_.step_ckpt.empty() ? checkpoint_path(step - 1)
                                                              : options_.step_ckpt;
    result.scores = evaluate_step(model, step, -1, true, previous);
  } catch (const Interrupted& e) {
    throw Interrupted(e.signal(), cat("step ", step, ": ", e.what(), " (evaluating ", path, "); nothing was written"));
  }
  result.eval_seconds = seconds_since(start);
  result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  report_scores(result, "test");
  return result;
}

std::vector<StepResult> Trainer::run() {
  remove_stale_temp_files_of_run();
  std::vector<StepResult> results;
  for (int step : steps()) {
    results.push_back(run_step(step));
    if (results.back().stopped) break;
  }
  return results;
}

// Once per Trainer, before its first step: callers that run single steps (strata demo, compare's
// shared step 0) leave the same record as run() does, so `strata report` finds every run's setting.
void Trainer::log_run_configuration() {
  if (run_logged_) return;
  run_logged_ = true;
  json::Object config{{"event", "run"},
                      {"dataset", options_.dataset},
                      {"data_root", options_.data_root},
                      {"task", task_->name()},
                      {"task_description", task_->describe()},
                      {"steps", options_.all_steps ? std::string("all") : std::to_string(options_.step)},
                      {"protocol", protocol_name(options_.protocol)},
                      {"convention", convention_name(options_.convention)},
                      {"method", setup(0).method.describe()},
                      {"model", setup(0).model.describe()},
                      {"seed", options_.seed},
                      {"device", device_.str()},
                      {"precision", precision_name(precision_)},
                      {"output", options_.output},
                      {"name", options_.name},
                      {"test", options_.test}};
  if (!options_.save_predictions.empty()) config.emplace_back("save_predictions", options_.save_predictions);
  if (!options_.replay_images.empty()) {
    config.emplace_back("replay_images", replay_folder_.empty() ? options_.replay_images : replay_folder_);
    config.emplace_back("replay_ratio", options_.replay_ratio.value_or(kDefaultReplayRatio));
  }
  log_.write(config);
}

StepResult Trainer::run_step(int step) {
  task_->check_step(step);
  log_run_configuration();
  if (options_.test) {
    StepResult result = evaluate_checkpoint(step);
    if (world_ != nullptr) world_->barrier();
    return result;
  }
  StepRun run = prepare_step(step);
  stop_if_requested(run, nullptr);
  StepResult result = train_epochs(run) ? finish_step(run) : stop_step(run);
  // When the step returns on any rank, rank 0's files of it are written.
  if (world_ != nullptr) world_->barrier();
  return result;
}

Trainer::StepRun Trainer::prepare_step(int step) {
  check(step >= 1 || options_.replay_images.empty(), "--replay-images ", options_.replay_images,
        ": step 0 has no old classes to replay; train step 0 without it");
  StepRun run;
  run.setup = setup(step);
  const int batch_size = run.setup.recipe.batch_size;
  run.result.step = step;
  run.result.checkpoint = checkpoint_path(step);
  run.subset = training_images(
      train_index_ ? *train_index_ : train_index_.emplace(data::load_label_index(*train_dataset_)), *task_, step,
      options_.protocol);
  run.result.training_images = static_cast<int64_t>(run.subset.size());
  // With replay a batch holds B - r of the step's images: an epoch is one pass over them.
  const int own_per_batch = batch_size - run.setup.replay_rows;
  // With W ranks each trains on ceil(N / W) of them (the loader's equal shards).
  const int64_t shard_images = (run.result.training_images + ranks() - 1) / ranks();
  check(shard_images >= own_per_batch, "step ", step, " of task ", task_->name(), " (",
        protocol_name(options_.protocol), ") has ", run.subset.size(), " training images, fewer than one batch of ",
        own_per_batch,
        run.setup.replay ? cat(" (--batch-size ", batch_size, " less ", run.setup.replay_rows, " replayed)")
                         : std::string(" (--batch-size)"),
        ranks() > 1 ? cat(" on each of ", ranks(), " ranks (", shard_images, " images each)") : std::string());
  run.iterations_per_epoch = shard_images / own_per_batch;
  run.max_iterations = run.setup.recipe.epochs * run.iterations_per_epoch;
  run.info = checkpoint_info(step);
  run.info.iterations_per_epoch = run.iterations_per_epoch;
  run.policy = CheckpointPolicy{run.iterations_per_epoch, run.max_iterations, options_.ckpt_interval,
                                options_.stop_after};

  std::optional<Checkpoint> previous = previous_step_checkpoint(run);
  print_step_start(run, previous);
  PreviousMethod previous_method;
  if (previous) previous_method = {previous->method_state, previous->info.method};
  run.session =
      std::make_unique<StepSession>(run.setup, *task_, previous ? &previous->model : nullptr, run.previous_path,
                                    step == 0 ? options_.weights : "", run.max_iterations, previous_method);
  previous.reset();
  if (!options_.ckpt.empty()) {
    run.iteration = resume_step(*run.session, options_.ckpt, run.info, nonfinite_tensors());
    run.resumed_from = options_.ckpt;
    print(cat("  resumed from ", options_.ckpt, " at iteration ", run.iteration, " of ", run.max_iterations,
              " (epoch ", run.iteration / run.iterations_per_epoch, ")\n"));
  }
  if (run.session->method().needs_pseudo_thresholds(step) && !run.session->method().pseudo_thresholds()) {
    compute_pseudo_label_thresholds(run);
  }
  log_step_start(run);
  run.checkpoints =
      std::make_unique<StepCheckpointWriter>(run.result.checkpoint, run.info, log_, run.resumed_from, run.iteration);
  return run;
}

std::optional<Checkpoint> Trainer::previous_step_checkpoint(StepRun& run) {
  const int step = run.setup.step;
  if (step == 0) return std::nullopt;
  run.previous_path = options_.step_ckpt.empty() ? checkpoint_path(step - 1) : options_.step_ckpt;
  return load_previous_step(run.previous_path, checkpoint_info(step - 1), task_->name(), step, nonfinite_tensors());
}

void Trainer::print_step_start(const StepRun& run, const std::optional<Checkpoint>& previous) {
  const StepSetup& s = run.setup;
  print(cat("step ", s.step, " of ", task_->describe(), "\n  ", s.model.describe(), "\n  ", s.method.describe(), "; ",
            protocol_name(options_.protocol), ", ", convention_name(options_.convention), " convention; ",
            run.result.training_images, " training images, ", run.iterations_per_epoch, " iterations x ",
            s.recipe.epochs, " epochs, batch ", s.recipe.batch_size, ", crop ", s.recipe.crop_size, ", lr ",
            s.recipe.lr, ", seed ", options_.seed, ", ", device_label(device_), " in ", precision_name(precision_),
            device_.is_cuda() ? (s.cuda_graphs       ? ", CUDA graphs"
                                 : world_ != nullptr ? ", no CUDA graphs (data parallel)"
                                                     : ", no CUDA graphs")
                              : "",
            "\n"));
  if (world_ != nullptr) {
    print(cat("  data parallel: ", ranks(), " ranks (", distributed::backend_name(world_->backend()), ") x batch ",
              s.recipe.batch_size, " = ", ranks() * s.recipe.batch_size, " images per iteration, ",
              s.sync_bn ? "synchronised batch norm" : "per-rank batch norm (--no-sync-bn)", "\n"));
  }
  if (s.replay) {
    print(cat("  replay: ", s.replay_rows, " of each batch's ", s.recipe.batch_size, " images from ", replay_folder_,
              " (", replay_set_->size(), " images), labelled by the step ", s.step - 1, " model\n"));
  }
  if (previous) {
    print(cat("  previous step: ", run.previous_path, " (", previous->info.method,
              previous->info.task != task_->name() ? cat(", task ", previous->info.task, ": same classes") : "",
              ")\n"));
  }
}

void Trainer::log_step_start(const StepRun& run) {
  const StepSetup& s = run.setup;
  const int step = s.step;
  json::Array channel_names;
  for (const std::string& name : task_->channel_names(step)) channel_names.emplace_back(name);
  log_.write(json::Object{{"event", "step_start"},
                          {"step", step},
                          {"classes", join_ints(task_->classes(step))},
                          {"channel_names", channel_names},
                          {"channels", task_->num_channels(step)},
                          {"old_channels", task_->old_channels(step)},
                          {"training_images", run.result.training_images},
                          {"iterations_per_epoch", run.iterations_per_epoch},
                          {"max_iterations", run.max_iterations},
                          {"epochs", s.recipe.epochs},
                          {"lr", s.recipe.lr},
                          {"batch_size", s.recipe.batch_size},
                          {"crop_size", s.recipe.crop_size},
                          {"method", s.method.describe()},
                          {"model", s.model.describe()},
                          {"teacher", run.session->teacher() != nullptr},
                          {"teacher_forward", teacher_forward_name(s.teacher_forward)},
                          {"previous_checkpoint", run.previous_path},
                          {"resumed_from", run.resumed_from},
                          {"start_iteration", run.iteration},
                          {"replayed_per_batch", s.replay_rows},
                          {"replay_set_images", replay_set_ && s.replay ? replay_set_->size() : int64_t{0}}});
}

data::LoaderOptions Trainer::training_loader_options(const StepRun& run, bool replay) const {
  const int step = run.setup.step;
  data::LoaderOptions o;
  o.mode = data::LoaderMode::train;
  o.batch_size = run.setup.recipe.batch_size - run.setup.replay_rows;
  if (replay && run.setup.replay) o.replay = data::LoaderOptions::Replay{*replay_set_, run.setup.replay_rows};
  o.crop_size = run.setup.recipe.crop_size;
  o.workers = options_.workers;
  o.seed = step_seed(options_.seed, step);
  o.shuffle = true;
  o.drop_last = true;
  o.subset = run.subset;
  o.label_map = training_label_table(*task_, step, options_.convention);
  if (world_ != nullptr) o.shard = {world_->rank(), world_->world_size()};
  return o;
}

// PLOP's Trainer.before -> find_median: the teacher over the step's training data as epoch 0 presents
// it (the same images, crops and flips as that epoch, whose own order is unaffected; no replayed
// image), before any training. The thresholds then travel in every checkpoint of the step, so a
// resume reads them back.
void Trainer::compute_pseudo_label_thresholds(StepRun& run) {
  data::LoaderOptions all_images = training_loader_options(run, false);
  all_images.shard = {};  // every rank over every image: the thresholds of one process, no communication
  data::Loader loader(*train_dataset_, all_images);
  data::DevicePrefetcher batches(loader, device_);
  batches.start_epoch(0, 0);
  ProgressBar bar(options_.progress ? out_ : nullptr, is_terminal(out_));
  bar.start(cat("step ", run.setup.step, " pseudo-label thresholds"), loader.batches_per_epoch(), 0);
  const auto start = Clock::now();
  int64_t images = 0;
  run.session->compute_pseudo_label_thresholds(
      [&]() -> std::optional<ThresholdBatch> {
        std::optional<data::Batch> batch = batches.next();
        if (!batch) return std::nullopt;
        images += batch->images.size(0);
        return ThresholdBatch{batch->images, batch->labels};
      },
      [&](int64_t done) { bar.update(done, "", ""); });
  bar.finish();
  const std::vector<float>& tau = run.session->method().pseudo_thresholds()->values;
  int64_t never = 0, always = 0;
  float low = std::numeric_limits<float>::infinity(), high = 0;
  for (float t : tau) {
    if (std::isnan(t)) {
      ++never;
    } else if (std::isinf(t)) {
      ++always;
    } else {
      low = std::min(low, t);
      high = std::max(high, t);
    }
  }
  auto short_number = [](double x) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.4g", x);
    return std::string(text);
  };
  print(cat(
      "  pseudo-label thresholds (", to_string(run.setup.method.pseudo_median), " median) of ", tau.size(),
      " old classes over ", images, " images in ", short_number(seconds_since(start)), " s: ",
      tau.size() - never - always > 0 ? cat(short_number(low), " to ", short_number(high)) : std::string("none finite"),
      never ? cat(", ", never, " never pseudo-labelled (NaN)") : std::string(),
      always ? cat(", ", always, " always (+inf)") : std::string(), "\n"));
}

bool Trainer::train_epochs(StepRun& run) {
  data::Loader loader(*train_dataset_, training_loader_options(run, true));
  // Batch k+1 travels to the device while batch k trains (a no-op on the CPU).
  data::DevicePrefetcher batches(loader, device_);
  run.interactive = is_terminal(out_);
  ProgressBar bar(options_.progress ? out_ : nullptr, run.interactive);
  bar.start(cat("step ", run.setup.step), run.max_iterations, run.iteration);
  reset_peak_memory(device_);
  run.start = Clock::now();
  TrainingInterval interval;
  while (run.iteration < run.max_iterations) {
    const int64_t epoch = run.iteration / run.iterations_per_epoch;
    // A resumed epoch replays the rest of that epoch's order from its next batch: same samples,
    // crops and flips as the uninterrupted run.
    batches.start_epoch(epoch, run.iteration % run.iterations_per_epoch);
    if (!train_epoch(run, batches, interval, bar)) {
      bar.finish();
      return false;
    }
    const bool epoch_done = run.iteration % run.iterations_per_epoch == 0;
    if (epoch_done && options_.val_interval > 0 && run.iteration < run.max_iterations &&
        (run.iteration / run.iterations_per_epoch) % options_.val_interval == 0) {
      evaluate_mid_step(run, bar);
    }
  }
  bar.finish();
  return true;
}

bool Trainer::train_epoch(StepRun& run, data::DevicePrefetcher& batches, TrainingInterval& interval,
                          ProgressBar& bar) {
  const int64_t epoch = run.iteration / run.iterations_per_epoch;
  const int64_t epoch_end = (epoch + 1) * run.iterations_per_epoch;
  while (run.iteration < epoch_end) {
    std::optional<data::Batch> batch = batches.next();
    if (!batch) {
      // Batches left out under --skip-bad: the position and schedule move to the epoch's end.
      run.iteration = epoch_end;
      run.session->schedule().set_iteration(run.iteration);
      break;
    }
    IterationStats stats;
    try {
      stats = run.session->train_iteration(batch->images, batch->labels, batch->replayed);
    } catch (const autograd::AnomalyError& e) {
      throw autograd::AnomalyError(cat("step ", run.setup.step, ", iteration ", run.iteration + 1, ": ", e.what(),
                                       "; last good checkpoint: ", run.checkpoints->last_good()));
    }
    ++run.iteration;
    ++run.result.iterations;
    interval.add(stats.loss, stats.names, stats.terms, stats.images);
    const bool log_now = run.iteration % options_.log_interval == 0 || run.iteration == run.max_iterations;
    if (log_now) log_interval(run, epoch, interval, stats.lr);
    // An interactive bar moves every iteration but shows the values of the last read.
    if (log_now || run.interactive) {
      bar.update(run.iteration, cat("epoch ", epoch + 1, "/", run.setup.recipe.epochs), run.shown,
                 log_now && !run.interactive);
    }
    if (run.policy.saves_at(run.iteration)) save_checkpoint(run, run.iteration, false);
    if (run.policy.stops_at(run.iteration)) return false;
    if (run.iteration < run.max_iterations) stop_if_requested(run, &bar);
  }
  return true;
}

void Trainer::log_interval(StepRun& run, int64_t epoch, TrainingInterval& interval, double lr) {
  IntervalMeans means = interval.read(run.session->health_probe());
  if (world_ != nullptr) {
    // The loss values logged are the means over the ranks (each rank's loss is over its own images).
    std::vector<double> values{means.loss};
    for (const auto& term : means.terms) values.push_back(term.second);
    Tensor summed = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
    world_->all_reduce_sum(summed);
    values = summed.to_vector<double>();
    means.loss = values[0] / ranks();
    for (size_t k = 0; k < means.terms.size(); ++k) means.terms[k].second = values[k + 1] / ranks();
    means.images = world_->all_reduce_sum(means.images);
  }
  const ModelHealth health = ModelHealth::from(means.probe);
  const int64_t peak = memory_stats(device_).peak_allocated_bytes;
  run.shown = format_training_stats(means, lr, peak);
  json::Object record =
      training_record(run.setup.step, epoch, run.iteration, means, lr, peak, seconds_since(run.start));
  record.emplace_back("grad_norm", health.gradient_norm);
  log_.write(record);
  if (events_) {
    const std::string step = cat("/", run.setup.step);
    events_->add_scalar("Loss" + step, means.loss, run.iteration);
    for (const auto& [name, mean] : means.terms) events_->add_scalar(cat("Loss-", name, step), mean, run.iteration);
    events_->add_scalar("LR" + step, lr, run.iteration);
    events_->add_scalar("Grad_Norm" + step, health.gradient_norm, run.iteration);
    events_->flush();
  }
  check_finite(run, means, health);
}

// The interval's sums are NaN or Inf exactly when one of its iterations' values was, and the
// health probe rides in the same read: the read the loop makes anyway is the guard, with no extra
// wait inside a step. Loss terms come first (the likeliest origin), then gradients, parameters and
// statistics; the failure path reads once more to name the tensor.
void Trainer::check_finite(const StepRun& run, const IntervalMeans& means, const ModelHealth& health) const {
  const auto shown = [](double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; };
  std::string problem;
  for (const auto& [name, mean] : means.terms) {
    if (!std::isfinite(mean)) {
      problem = cat("the loss term '", name, "' is not finite (mean ", shown(mean), ")");
      break;
    }
  }
  if (problem.empty() && !std::isfinite(means.loss)) {
    problem = cat("the loss term 'total' is not finite (mean ", shown(means.loss), ")");
  }
  int64_t first = run.iteration - means.iterations + 1;
  if (problem.empty()) {
    if (std::isfinite(health.gradient_norm) && health.parameters_finite && health.statistics_finite) return;
    first = run.iteration;  // the probe sees the interval's last iteration
    const std::string tensor = run.session->first_nonfinite_tensor();
    problem = !std::isfinite(health.gradient_norm)
                  ? cat("the gradients' global norm is not finite (", shown(health.gradient_norm), ")")
                  : std::string(health.parameters_finite ? "a batch-norm statistic is not finite"
                                                         : "a parameter is not finite");
    if (!tensor.empty()) problem += cat(": '", tensor, "' holds NaN or Inf");
  }
  throw Error(cat("step ", run.setup.step, ", ",
                  first == run.iteration ? cat("iteration ", first) : cat("iterations ", first, "-", run.iteration),
                  ": the training diverged: ", problem,
                  ", so the run stops (a lower --lr may help; --detect-anomaly names the first op producing NaN or "
                  "Inf); last good checkpoint: ",
                  run.checkpoints->last_good()));
}

void Trainer::evaluate_mid_step(StepRun& run, ProgressBar& bar) {
  const int step = run.setup.step;
  const int64_t epoch = run.iteration / run.iterations_per_epoch;
  bar.finish();
  const auto eval_start = Clock::now();
  SegmentationScores scores;
  try {
    scores = evaluate_step(run.session->model(), step, epoch);
  } catch (const Interrupted& e) {
    rethrow_evaluation_interrupted(run, e, run.checkpoints->path());
  }
  const StepMeans means = step_means(scores, *task_, step);
  log_.write(joined(json::Object{{"event", "eval"}, {"step", step}, {"epoch", epoch}, {"iteration", run.iteration},
                                 {"seconds", seconds_since(eval_start)}},
                    scores_record(scores, means)));
  add_score_scalars("Val_", scores, means, step, epoch);
  print(cat("step ", step, " epoch ", epoch, ": mIoU ", format_percent(scores.mean_iou),
            "% (old/new/all with background ", format_percent(means.old_with_background), " / ",
            format_percent(means.new_with_background), " / ", format_percent(means.all_with_background), ")\n"));
}

StepResult Trainer::stop_step(StepRun& run) {
  StepResult& result = run.result;
  result.stopped = true;
  result.train_seconds = seconds_since(run.start);
  result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  log_.write(json::Object{{"event", "stopped"}, {"step", result.step}, {"iteration", run.iteration}});
  print(cat("step ", result.step, ": stopped after iteration ", run.iteration, " of ", run.max_iterations,
            " (--stop-after); ", "resume with --ckpt ", result.checkpoint, "\n"));
  return result;
}

// The safe point after an iteration (and before the first): the checkpoint a periodic save writes,
// so that --ckpt resumes the step bit-identically.
void Trainer::stop_if_requested(StepRun& run, ProgressBar* bar) {
  int signal = stop_ != nullptr ? stop_->requested() : 0;
  // Every rank stops at the same iteration: the first signal any of them saw.
  if (world_ != nullptr) signal = static_cast<int>(world_->all_reduce_max(signal));
  if (signal == 0) return;
  if (bar != nullptr) bar->finish();
  const int step = run.setup.step;
  const bool trained = run.result.iterations > 0;
  std::string checkpoint = run.resumed_from;
  if (trained) {
    checkpoint = run.checkpoints->path();
    if (!run.policy.saves_at(run.iteration)) {
      print(
          cat("step ", step, ": ", signal_name(signal), ": writing the checkpoint of iteration ", run.iteration, "\n"));
      save_checkpoint(run, run.iteration, false);
    }
  }
  log_.write(json::Object{{"event", "interrupted"},
                          {"step", step},
                          {"iteration", run.iteration},
                          {"signal", signal_name(signal)},
                          {"checkpoint", checkpoint}});
  throw Interrupted(signal,
                    cat("step ", step, " stopped by ", signal_name(signal), " ",
                        trained ? cat("after iteration ", run.iteration, " of ", run.max_iterations)
                                : cat("before training (at iteration ", run.iteration, " of ", run.max_iterations, ")"),
                        checkpoint.empty() ? std::string("; nothing was written")
                                           : cat("; its checkpoint: ", checkpoint, " (iteration ", run.iteration, ")")),
                    checkpoint, step);
}

void Trainer::rethrow_evaluation_interrupted(const StepRun& run, const Interrupted& stopped,
                                             const std::string& checkpoint) {
  const int step = run.setup.step;
  log_.write(json::Object{{"event", "interrupted"},
                          {"step", step},
                          {"iteration", run.iteration},
                          {"signal", signal_name(stopped.signal())},
                          {"checkpoint", checkpoint}});
  throw Interrupted(stopped.signal(),
                    cat("step ", step, ": ", stopped.what(), " at iteration ", run.iteration, " of ",
                        run.max_iterations, "; its checkpoint: ", checkpoint, " (iteration ", run.iteration, ")"),
                    checkpoint, step);
}

void Trainer::save_checkpoint(StepRun& run, int64_t iteration, bool complete) {
  if (main_rank()) run.checkpoints->save(*run.session, iteration, complete);
  if (world_ != nullptr) world_->barrier();
}

void Trainer::remove_stale_temp_files_of_run() {
  if (!main_rank()) return;
  const std::filesystem::path output(options_.output);
  for (const std::string& folder :
       {(output / "checkpoints").string(), (output / "results").string(), train_dataset_->root()}) {
    for (const StaleTempFile& file : remove_stale_temp_files(folder)) {
      print(file.error.empty() ? cat("removed ", file.path, " (", format_bytes(static_cast<int64_t>(file.bytes)),
                                     ", left by process ", file.pid, ", which no longer runs)\n")
                               : cat("warning: cannot remove ", file.path, " (left by process ", file.pid,
                                     ", which no longer runs): ", file.error, "\n"));
    }
  }
}

StepResult Trainer::finish_step(StepRun& run) {
  StepResult& result = run.result;
  save_checkpoint(run, run.iteration, true);
  result.trained = result.iterations > 0;
  result.train_seconds = seconds_since(run.start);
  result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  const double images_per_second =
      result.train_seconds > 0
          ? static_cast<double>(result.iterations * run.setup.recipe.batch_size * ranks()) / result.train_seconds
          : 0;
  print(cat("step ", result.step, ": ", result.iterations, " iterations in ", format_duration(result.train_seconds),
            " (", static_cast<int64_t>(std::lround(images_per_second)), " images/s), peak memory ",
            format_bytes(result.peak_memory_bytes), "; checkpoint ", result.checkpoint, "\n"));

  const auto eval_start = Clock::now();
  try {
    result.scores = evaluate_step(run.session->model(), result.step, run.setup.recipe.epochs, true, run.previous_path);
  } catch (const Interrupted& e) {
    rethrow_evaluation_interrupted(run, e, result.checkpoint);
  }
  result.eval_seconds = seconds_since(eval_start);
  log_.write(json::Object{{"event", "step_end"},
                          {"step", result.step},
                          {"iterations", result.iterations},
                          {"train_seconds", result.train_seconds},
                          {"eval_seconds", result.eval_seconds},
                          {"images_per_second", images_per_second},
                          {"peak_memory_bytes", result.peak_memory_bytes}});
  report_scores(result, "test");
  return result;
}

}  // namespace strata::incremental

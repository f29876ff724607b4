#include "incremental/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "data/device_prefetcher.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops/argmax.h"
#include "engine/ops/normalize.h"
#include "engine/profiler.h"
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

json::Value number_or_null(double value) { return std::isfinite(value) ? json::Value(value) : json::Value(); }

bool is_terminal(std::FILE* out) { return out != nullptr && isatty(fileno(out)) == 1; }

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  char text[16];
  std::snprintf(text, sizeof(text), "%.2f", 100 * fraction);
  return text;
}

template <class T>
T per_step(const std::vector<T>& values, int step) {
  return values.at(std::min(values.size() - 1, static_cast<size_t>(step)));
}

std::string join_ints(const std::vector<int>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

json::Object scores_record(const SegmentationScores& scores, const StepMeans& means) {
  json::Array iou;
  for (int c = 0; c < scores.num_classes(); ++c) {
    iou.push_back(scores.has_ground_truth(c) ? number_or_null(scores.iou[static_cast<size_t>(c)]) : json::Value());
  }
  return json::Object{
      {"miou", number_or_null(scores.mean_iou)},
      {"pixel_accuracy", number_or_null(scores.pixel_accuracy)},
      {"mean_class_accuracy", number_or_null(scores.mean_class_accuracy)},
      {"old_with_background", number_or_null(means.old_with_background)},
      {"new_with_background", number_or_null(means.new_with_background)},
      {"all_with_background", number_or_null(means.all_with_background)},
      {"old_without_background", number_or_null(means.old_without_background)},
      {"new_without_background", number_or_null(means.new_without_background)},
      {"all_without_background", number_or_null(means.all_without_background)},
      {"iou", iou},
  };
}

json::Object with(json::Object head, const json::Object& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

}  // namespace

std::string format_steps_table(const Task& task, const std::vector<StepResult>& results) {
  auto cell = [](double fraction) {
    char text[16];
    if (std::isfinite(fraction)) {
      std::snprintf(text, sizeof(text), "%6.1f", 100 * fraction);
    } else {
      std::snprintf(text, sizeof(text), "%6s", "-");
    }
    return std::string(text);
  };
  std::string out = cat("mean IoU (%) of task ", task.describe(), "\n",
                        "                          background included       background excluded\n",
                        "step  classes added          old    new    all        old    new    all\n");
  for (const StepResult& r : results) {
    const std::vector<int>& added = task.classes(r.step);
    char row[160];
    std::snprintf(row, sizeof(row), "%4d  %-18s", r.step,
                  cat(added.front(), "-", added.back(), " (", added.size(), ")").c_str());
    out += row;
    if (r.stopped) {
      out += "   stopped before its evaluation\n";
      continue;
    }
    const StepMeans& m = r.means;
    out += cat(cell(m.old_with_background), " ", cell(m.new_with_background), " ", cell(m.all_with_background),
               "     ", cell(m.old_without_background), " ", cell(m.new_without_background), " ",
               cell(m.all_without_background), "\n");
  }
  return out;
}

// ---- StepSession --------------------------------------------------------------------------------

StepSession::StepSession(const StepSetup& setup, const Task& task, const TensorMap* previous_weights,
                         const std::string& source, const std::string& initial_weights, int64_t max_iterations)
    : setup_(setup), method_(setup.method) {
  const int step = setup.step;
  task.check_step(step);
  old_channels_ = task.old_channels(step);
  models::ModelConfig config = setup.model;
  // At step >= 1 every parameter but the new classifier is loaded next.
  config.initialize = step == 0;
  model_ = std::make_shared<models::SegmentationModel>(config);
  if (step == 0) {
    if (!initial_weights.empty()) models::load_weights(*model_, initial_weights, models::LoadMode::backbone);
  } else {
    check(previous_weights != nullptr, "step ", step, " of task ", task.name(),
          " needs the previous step's weights (none given)");
    models::load_weights(*model_, *previous_weights, models::LoadMode::previous_step, source);
    method_.on_step_start(*model_, step);
    if (method_.needs_teacher(step)) {
      models::ModelConfig teacher_config = setup.model;
      teacher_config.classes.pop_back();
      teacher_ = std::make_unique<Teacher>(teacher_config, *previous_weights, source, setup.device);
    }
  }
  model_->to(setup.device);
  model_->train();

  // MiB's three parameter groups (body, head, classifier), one lr, weight decay on everything.
  std::vector<optim::ParamGroup> groups = {{"body", {}}, {"head", {}}, {"classifier", {}}};
  const std::string body = model_->backbone_prefix();
  const std::string classifier = models::SegmentationModel::kClassifierPrefix;
  for (auto& [name, parameter] : model_->named_parameters()) {
    const size_t group = name.rfind(body, 0) == 0 ? 0 : name.rfind(classifier, 0) == 0 ? 2 : 1;
    groups[group].params.emplace_back(name, parameter);
  }
  for (optim::ParamGroup& g : groups) {
    g.lr = setup.recipe.lr;
    g.momentum = setup.recipe.momentum;
    g.nesterov = setup.recipe.nesterov;
    g.weight_decay = setup.recipe.weight_decay;
  }
  optimizer_ = std::make_unique<optim::SGD>(std::move(groups));
  schedule_ = std::make_unique<optim::PolyLR>(*optimizer_, max_iterations, setup.recipe.lr_power);
}

IterationStats StepSession::train_iteration(const Tensor& images, const Tensor& labels) {
  const int step = setup_.step;
  IterationStats stats;
  stats.lr = schedule_->lr();
  stats.images = images.size(0);
  // The previous iteration's gradients go first (as MiB's train.py zeroes them): held through the
  // forward, they would add their whole size to the step's peak memory.
  optimizer_->zero_grad();
  Tensor x = normalize_image(images.to(setup_.device));
  Tensor y = labels.to(setup_.device);
  // The phases are profiler scopes (kPhaseScopes) so a profile says where a step's time goes.
  TeacherOutput teacher_output;
  if (teacher_) {
    profiler::Scope scope(kPhaseScopes[0]);
    teacher_output = teacher_->run(x, method_.maps_needed(step));
  }
  models::ForwardResult student;
  {
    profiler::Scope scope(kPhaseScopes[1]);
    student = model_->forward(x, method_.forward_options(step));
  }
  LossBreakdown loss;
  {
    profiler::Scope scope(kPhaseScopes[2]);
    loss = method_.loss(student, teacher_ ? &teacher_output : nullptr, y, old_channels_, step);
  }
  student = models::ForwardResult();
  teacher_output = TeacherOutput();
  {
    profiler::Scope scope(kPhaseScopes[3]);
    loss.total.backward();
  }
  {
    profiler::Scope scope(kPhaseScopes[4]);
    optimizer_->step();
    schedule_->step();
  }
  stats.loss = loss.total.item();
  stats.terms = std::move(loss.weighted);
  return stats;
}

void StepSession::restore(const Checkpoint& checkpoint) {
  models::load_weights(*model_, checkpoint.model, models::LoadMode::full, checkpoint.path);
  optimizer_->load_state_dict(checkpoint.optimizer, checkpoint.optimizer_metadata);
  schedule_->set_iteration(checkpoint.info.iteration);
  method_.load_state(checkpoint.method_state, checkpoint.path);
}

// ---- evaluation ---------------------------------------------------------------------------------

SegmentationScores evaluate_model(models::SegmentationModel& model, const data::Dataset& dataset,
                                  const std::vector<int64_t>& subset, const LabelTable& table, int num_classes,
                                  const EvalOptions& options, ProgressBar* progress) {
  // An empty subset means "every sample" to the loader: refuse it here instead.
  check(!subset.empty(), "evaluate: no images to evaluate in ", dataset.root(), " (", dataset.split(), ")");
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  data::LoaderOptions loader_options;
  loader_options.mode = options.full_image ? data::LoaderMode::eval_full : data::LoaderMode::eval;
  loader_options.batch_size = options.full_image ? 1 : options.batch_size;
  loader_options.crop_size = options.crop_size;
  loader_options.workers = options.workers;
  loader_options.shuffle = false;
  loader_options.drop_last = false;
  loader_options.subset = subset;
  loader_options.label_map = table;
  data::Loader loader(dataset, loader_options);
  ConfusionMatrix matrix(num_classes);
  const int64_t batches = loader.batches_per_epoch();
  if (progress != nullptr) progress->start("eval", batches, 0);
  int64_t done = 0;
  data::DevicePrefetcher prefetcher(loader, options.device, data::DevicePrefetcher::LabelsOn::host);
  prefetcher.start_epoch(0);
  while (std::optional<data::Batch> batch = prefetcher.next()) {
    Tensor x = normalize_image(batch->images);
    models::ForwardResult result = model.forward(x);
    matrix.update(argmax(result.logits).to(Device::cpu()), batch->labels);
    ++done;
    if (progress != nullptr) progress->update(done, "", cat(batch->indices.size(), " images"), done == batches);
  }
  if (progress != nullptr) progress->finish();
  model.train(was_training);
  return compute_scores(matrix);
}

// ---- Trainer ------------------------------------------------------------------------------------

Trainer::Trainer(TrainOptions options, std::FILE* out) : options_(std::move(options)), out_(out) {
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
  device_ = parse_device(o.device);

  data::DatasetOptions dataset_options;
  dataset_options.skip_bad = o.skip_bad;
  const bool ade = o.dataset == "ade" || o.dataset == "ade20k";
  check(ade || o.dataset == "voc", "--dataset '", o.dataset, "': expected voc or ade20k (ade)");
  const std::string split = !o.train_split.empty() ? o.train_split : ade ? "training" : "train_aug";
  train_dataset_.emplace(data::Dataset::open(ade ? "ade20k" : "voc", o.data_root, split, dataset_options));
  task_.emplace(Task::create(*train_dataset_, o.task));
  steps();  // validates --step
  setup(0);  // validates the model and method options before any work
  log_ = JsonlLog(log_path());
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

std::string Trainer::dataset_name() const { return task_->labels().kind == data::DatasetKind::ade20k ? "ade" : "voc"; }

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
  if (o.backbone == "small") {
    s.model = models::small_model_config(classes, o.output_stride);
  } else if (o.backbone == "resnet50" || o.backbone == "resnet101") {
    s.model.depth = o.backbone == "resnet50" ? 50 : 101;
    s.model.classes = classes;
  } else {
    throw Error(cat("--backbone '", o.backbone, "': expected resnet50, resnet101 or small"));
  }
  s.model.flavour = models::parse_flavour(o.head);
  s.model.output_stride = o.output_stride;
  if (!o.norm.empty()) s.model.norm = models::parse_norm(o.norm);
  if (!o.blocks.empty()) s.model.blocks = o.blocks;
  if (o.width > 0) s.model.width = o.width;
  if (o.head_channels > 0) s.model.head_channels = o.head_channels;
  check(o.pooling >= 0, "--pooling must be >= 0, got ", o.pooling);
  s.model.pooling_size = o.pooling;
  s.model.seed = o.seed;
  s.model.resolved_rates();                     // validates the output stride
  s.model.backbone_config().resolved_blocks();  // validates blocks and width
  s.method = apply_overrides(method_preset(o.method, *task_), o.method_overrides);
  s.recipe = reference_recipe(*task_, step);
  if (!o.lr.empty()) s.recipe.lr = per_step(o.lr, step);
  if (!o.epochs.empty()) s.recipe.epochs = per_step(o.epochs, step);
  if (o.batch_size > 0) s.recipe.batch_size = o.batch_size;
  if (o.crop_size > 0) s.recipe.crop_size = o.crop_size;
  s.device = device_;
  s.seed = o.seed;
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
    const bool ade = task_->labels().kind == data::DatasetKind::ade20k;
    const std::string split = !options_.test_split.empty() ? options_.test_split : ade ? "validation" : "val";
    test_dataset_.emplace(data::Dataset::open(ade ? "ade20k" : "voc", options_.data_root, split, dataset_options));
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

SegmentationScores Trainer::evaluate_step(models::SegmentationModel& model, int step) {
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
  ProgressBar bar(options_.progress ? out_ : nullptr, is_terminal(out_));
  return evaluate_model(model, test_dataset(), subset, test_label_table(*task_, step, options_.convention),
                        task_->num_channels(step), eval, is_terminal(out_) ? &bar : nullptr);
}

void Trainer::report_scores(StepResult& result, const std::string& what) {
  result.means = step_means(result.scores, *task_, result.step);
  const StepMeans& m = result.means;
  ResultsCsv csv(results_path());
  csv.set_row(result.step, results_csv_row(result.step, result.scores, *task_));
  const ResultsAverage average = csv.average();
  log_.write(with(json::Object{{"event", "result"}, {"step", result.step}, {"what", what}},
                  with(scores_record(result.scores, m),
                       json::Object{{"results_csv", csv.path()},
                                    {"average_miou_over_steps", number_or_null(average.average_miou)},
                                    {"steps_in_csv", static_cast<int64_t>(average.rows)}})));
  if (options_.print_tables) print(format_scores(result.scores, *task_, result.step));
  print(cat("step ", result.step, " ", what, ": mIoU ", percent(result.scores.mean_iou), "% | old/new/all with ",
            "background ", percent(m.old_with_background), " / ", percent(m.new_with_background), " / ",
            percent(m.all_with_background), " | without background ", percent(m.old_without_background), " / ",
            percent(m.new_without_background), " / ", percent(m.all_without_background), " | pixel accuracy ",
            percent(result.scores.pixel_accuracy), "%, mean class accuracy ",
            percent(result.scores.mean_class_accuracy), "%\n"));
  print(cat("results ", csv.path(), ": ", average.rows, " step", average.rows == 1 ? "" : "s", ", final mIoU ",
            percent(average.final_miou), "%, average over steps ", percent(average.average_miou), "%\n"));
}

StepResult Trainer::evaluate_checkpoint(int step) {
  const std::string path = options_.ckpt.empty() ? checkpoint_path(step) : options_.ckpt;
  check(std::filesystem::exists(path), "--test: the checkpoint of step ", step, " of task ", task_->name(), ", ", path,
        ", does not exist (train the step first, or pass --ckpt FILE)");
  Checkpoint checkpoint = load_checkpoint(path);
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
  result.scores = evaluate_step(model, step);
  result.eval_seconds = seconds_since(start);
  result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  report_scores(result, "test");
  return result;
}

std::vector<StepResult> Trainer::run() {
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
                      {"output", options_.output},
                      {"name", options_.name},
                      {"test", options_.test}};
  log_.write(config);
  std::vector<StepResult> results;
  for (int step : steps()) {
    results.push_back(run_step(step));
    if (results.back().stopped) break;
  }
  return results;
}

StepResult Trainer::run_step(int step) {
  task_->check_step(step);
  if (options_.test) return evaluate_checkpoint(step);
  const StepSetup s = setup(step);
  const int batch_size = s.recipe.batch_size;
  StepResult result;
  result.step = step;
  result.checkpoint = checkpoint_path(step);

  const std::vector<int64_t> subset = training_images(
      train_index_ ? *train_index_ : train_index_.emplace(data::load_label_index(*train_dataset_)), *task_, step,
      options_.protocol);
  result.training_images = static_cast<int64_t>(subset.size());
  check(result.training_images >= batch_size, "step ", step, " of task ", task_->name(), " (",
        protocol_name(options_.protocol), ") has ", subset.size(), " training images, fewer than one batch of ",
        batch_size, " (--batch-size)");
  const int64_t iterations_per_epoch = result.training_images / batch_size;
  const int64_t max_iterations = s.recipe.epochs * iterations_per_epoch;

  CheckpointInfo info = checkpoint_info(step);
  info.iterations_per_epoch = iterations_per_epoch;

  std::optional<Checkpoint> previous;
  std::string previous_path;
  if (step >= 1) {
    previous_path = options_.step_ckpt.empty() ? checkpoint_path(step - 1) : options_.step_ckpt;
    check(std::filesystem::exists(previous_path), "step ", step, " of task ", task_->name(), " needs the checkpoint of ",
          "step ", step - 1, ", ", previous_path, ", which does not exist: train step ", step - 1,
          " first (same --output and --name) or give its file with --step-ckpt");
    previous.emplace(load_checkpoint(previous_path));
    check_checkpoint(*previous, checkpoint_info(step - 1), CheckpointUse::previous_step);
  }

  print(cat("step ", step, " of ", task_->describe(), "\n  ", s.model.describe(), "\n  ", s.method.describe(), "; ",
            protocol_name(options_.protocol), ", ", convention_name(options_.convention), " convention; ",
            result.training_images, " training images, ", iterations_per_epoch, " iterations x ", s.recipe.epochs,
            " epochs, batch ", batch_size, ", crop ", s.recipe.crop_size, ", lr ", s.recipe.lr, ", seed ",
            options_.seed, ", ", device_.str(), "\n"));
  if (previous) {
    print(cat("  previous step: ", previous_path, " (", previous->info.method,
              previous->info.task != task_->name() ? cat(", task ", previous->info.task, ": same classes") : "",
              ")\n"));
  }

  StepSession session(s, *task_, previous ? &previous->model : nullptr, previous_path,
                      step == 0 ? options_.weights : "", max_iterations);
  previous.reset();
  int64_t iteration = 0;
  std::string resumed_from;
  if (!options_.ckpt.empty()) {
    Checkpoint resume = load_checkpoint(options_.ckpt);
    check_checkpoint(resume, info, CheckpointUse::resume);
    session.restore(resume);
    iteration = resume.info.iteration;
    resumed_from = options_.ckpt;
    print(cat("  resumed from ", options_.ckpt, " at iteration ", iteration, " of ", max_iterations, " (epoch ",
              iteration / iterations_per_epoch, ")\n"));
  }
  log_.write(json::Object{{"event", "step_start"},
                          {"step", step},
                          {"classes", join_ints(task_->classes(step))},
                          {"channels", task_->num_channels(step)},
                          {"old_channels", task_->old_channels(step)},
                          {"training_images", result.training_images},
                          {"iterations_per_epoch", iterations_per_epoch},
                          {"max_iterations", max_iterations},
                          {"epochs", s.recipe.epochs},
                          {"lr", s.recipe.lr},
                          {"batch_size", batch_size},
                          {"crop_size", s.recipe.crop_size},
                          {"method", s.method.describe()},
                          {"model", s.model.describe()},
                          {"teacher", session.teacher() != nullptr},
                          {"previous_checkpoint", previous_path},
                          {"resumed_from", resumed_from},
                          {"start_iteration", iteration}});

  data::LoaderOptions loader_options;
  loader_options.mode = data::LoaderMode::train;
  loader_options.batch_size = batch_size;
  loader_options.crop_size = s.recipe.crop_size;
  loader_options.workers = options_.workers;
  loader_options.seed = step_seed(options_.seed, step);
  loader_options.shuffle = true;
  loader_options.drop_last = true;
  loader_options.subset = subset;
  loader_options.label_map = training_label_table(*task_, step, options_.convention);
  data::Loader loader(*train_dataset_, loader_options);

  auto save = [&](bool complete) {
    info.epoch = iteration / iterations_per_epoch;
    info.iteration = iteration;
    info.complete = complete;
    save_checkpoint(result.checkpoint, info, session.model(), &session.optimizer(), session.method().state());
    log_.write(json::Object{{"event", "checkpoint"},
                            {"step", step},
                            {"epoch", info.epoch},
                            {"iteration", iteration},
                            {"complete", complete},
                            {"path", result.checkpoint}});
  };

  const bool interactive = is_terminal(out_);
  ProgressBar bar(options_.progress ? out_ : nullptr, interactive);
  bar.start(cat("step ", step), max_iterations, iteration);
  reset_peak_memory(device_);
  const auto start = Clock::now();
  // Means over the current log interval.
  std::map<std::string, double> interval_terms;
  std::vector<std::string> term_order;
  double interval_loss = 0;
  int64_t interval_iterations = 0, interval_images = 0;
  auto interval_start = Clock::now();
  std::string shown = "starting";

  while (iteration < max_iterations) {
    const int64_t epoch = iteration / iterations_per_epoch;
    const int64_t done_in_epoch = iteration % iterations_per_epoch;
    // A resumed epoch replays the rest of that epoch's order: same samples, crops and flips.
    std::unique_ptr<data::Loader> rest;
    data::Loader* source = &loader;
    if (done_in_epoch > 0) {
      const std::vector<int64_t> order = loader.epoch_order(epoch);
      data::LoaderOptions rest_options = loader_options;
      rest_options.shuffle = false;
      rest_options.subset.assign(order.begin() + done_in_epoch * batch_size,
                                 order.begin() + iterations_per_epoch * batch_size);
      rest = std::make_unique<data::Loader>(*train_dataset_, rest_options);
      source = rest.get();
    }
    // Batch k+1 travels to the device while batch k trains (a no-op on the CPU).
    data::DevicePrefetcher prefetcher(*source, device_);
    prefetcher.start_epoch(epoch);
    while (iteration < (epoch + 1) * iterations_per_epoch) {
      std::optional<data::Batch> batch = prefetcher.next();
      if (!batch) {
        // Batches left out under --skip-bad: the position and schedule move to the epoch's end.
        iteration = (epoch + 1) * iterations_per_epoch;
        session.schedule().set_iteration(iteration);
        break;
      }
      const IterationStats stats = session.train_iteration(batch->images, batch->labels);
      ++iteration;
      ++result.iterations;
      interval_loss += stats.loss;
      ++interval_iterations;
      interval_images += stats.images;
      for (const auto& [term, value] : stats.terms) {
        if (!interval_terms.count(term)) term_order.push_back(term);
        interval_terms[term] += value;
      }
      const bool log_now = iteration % options_.log_interval == 0 || iteration == max_iterations;
      if (log_now || interactive) {
        const double seconds = seconds_since(interval_start);
        const double images_per_second = seconds > 0 ? static_cast<double>(interval_images) / seconds : 0;
        const double n = static_cast<double>(interval_iterations);
        const int64_t peak = memory_stats(device_).peak_allocated_bytes;
        char loss_text[64];
        std::snprintf(loss_text, sizeof(loss_text), "loss %.4f", interval_loss / n);
        std::string text = loss_text;
        if (term_order.size() > 1) {
          text += " (";
          for (size_t i = 0; i < term_order.size(); ++i) {
            char term_text[64];
            std::snprintf(term_text, sizeof(term_text), "%s%s %.4f", i ? " " : "", term_order[i].c_str(),
                          interval_terms[term_order[i]] / n);
            text += term_text;
          }
          text += ")";
        }
        char rest_text[96];
        std::snprintf(rest_text, sizeof(rest_text), " lr %.3g %.1f img/s peak %s", stats.lr, images_per_second,
                      format_bytes(peak).c_str());
        shown = text + rest_text;
        if (log_now) {
          json::Object record{{"event", "train"},
                              {"step", step},
                              {"epoch", epoch},
                              {"iteration", iteration},
                              {"loss", interval_loss / n}};
          for (const std::string& term : term_order) record.emplace_back(term, interval_terms[term] / n);
          record.emplace_back("lr", stats.lr);
          record.emplace_back("images_per_second", images_per_second);
          record.emplace_back("peak_memory_bytes", peak);
          record.emplace_back("elapsed_seconds", seconds_since(start));
          log_.write(record);
          interval_terms.clear();
          term_order.clear();
          interval_loss = 0;
          interval_iterations = 0;
          interval_images = 0;
          interval_start = Clock::now();
        }
        if (log_now || interactive) {
          bar.update(iteration, cat("epoch ", epoch + 1, "/", s.recipe.epochs), shown, log_now && !interactive);
        }
      }
      if (iteration < max_iterations) {
        const bool stop = options_.stop_after > 0 && iteration >= options_.stop_after;
        const bool interval = options_.ckpt_interval > 0 && iteration % options_.ckpt_interval == 0;
        const bool epoch_end = iteration % iterations_per_epoch == 0;
        if (stop || interval || epoch_end) save(false);
        if (stop) {
          bar.finish();
          result.stopped = true;
          result.train_seconds = seconds_since(start);
          result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
          log_.write(json::Object{{"event", "stopped"}, {"step", step}, {"iteration", iteration}});
          print(cat("step ", step, ": stopped after iteration ", iteration, " of ", max_iterations, " (--stop-after); ",
                    "resume with --ckpt ", result.checkpoint, "\n"));
          return result;
        }
      }
    }
    const bool epoch_done = iteration % iterations_per_epoch == 0;
    if (epoch_done && options_.val_interval > 0 && iteration < max_iterations &&
        (iteration / iterations_per_epoch) % options_.val_interval == 0) {
      bar.finish();
      const auto eval_start = Clock::now();
      SegmentationScores scores = evaluate_step(session.model(), step);
      const StepMeans means = step_means(scores, *task_, step);
      log_.write(with(json::Object{{"event", "eval"}, {"step", step}, {"epoch", iteration / iterations_per_epoch},
                                   {"iteration", iteration}, {"seconds", seconds_since(eval_start)}},
                      scores_record(scores, means)));
      print(cat("step ", step, " epoch ", iteration / iterations_per_epoch, ": mIoU ", percent(scores.mean_iou),
                "% (old/new/all with background ", percent(means.old_with_background), " / ",
                percent(means.new_with_background), " / ", percent(means.all_with_background), ")\n"));
    }
  }
  bar.finish();
  save(true);
  result.trained = result.iterations > 0;
  result.train_seconds = seconds_since(start);
  result.peak_memory_bytes = memory_stats(device_).peak_allocated_bytes;
  const double images_per_second =
      result.train_seconds > 0 ? static_cast<double>(result.iterations * batch_size) / result.train_seconds : 0;
  print(cat("step ", step, ": ", result.iterations, " iterations in ", format_duration(result.train_seconds), " (",
            static_cast<int64_t>(std::lround(images_per_second)), " images/s), peak memory ",
            format_bytes(result.peak_memory_bytes), "; checkpoint ", result.checkpoint, "\n"));

  const auto eval_start = Clock::now();
  result.scores = evaluate_step(session.model(), step);
  result.eval_seconds = seconds_since(eval_start);
  log_.write(json::Object{{"event", "step_end"},
                          {"step", step},
                          {"iterations", result.iterations},
                          {"train_seconds", result.train_seconds},
                          {"eval_seconds", result.eval_seconds},
                          {"images_per_second", images_per_second},
                          {"peak_memory_bytes", result.peak_memory_bytes}});
  report_scores(result, "test");
  return result;
}

}  // namespace strata::incremental

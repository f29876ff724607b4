#include "incremental/evaluate.h"

#include <algorithm>
#include <optional>

#include "data/device_prefetcher.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/argmax.h"
#include "engine/ops/normalize.h"

namespace strata::incremental {

namespace {

// (h, w) maps of u8 channel indices from (N, h, w) int64 predictions, row r.
data::Image prediction_row(const std::vector<int64_t>& predicted, size_t r, int h, int w) {
  const size_t pixels = static_cast<size_t>(h) * static_cast<size_t>(w);
  data::Image out(h, w, 1);
  for (size_t p = 0; p < pixels; ++p) out.pixels[p] = static_cast<uint8_t>(predicted[r * pixels + p]);
  return out;
}

// The rows of `batch` that options asks for, to options.on_sample (with the teacher's prediction of
// `x` when there is a teacher).
void give_samples(const data::Batch& batch, const Tensor& x, const Tensor& prediction, const EvalOptions& options) {
  std::vector<size_t> rows;
  for (size_t r = 0; r < batch.indices.size(); ++r) {
    const auto& wanted = options.sample_indices;
    if (options.every_sample || std::find(wanted.begin(), wanted.end(), batch.indices[r]) != wanted.end()) {
      rows.push_back(r);
    }
  }
  if (rows.empty()) return;
  const int h = static_cast<int>(batch.labels.size(1)), w = static_cast<int>(batch.labels.size(2));
  const size_t pixels = static_cast<size_t>(h) * static_cast<size_t>(w);
  const std::vector<uint8_t> images = batch.images.to(Device::cpu()).to_vector<uint8_t>();
  const std::vector<uint8_t> labels = batch.labels.to(Device::cpu()).to_vector<uint8_t>();
  const std::vector<int64_t> predicted = prediction.to_vector<int64_t>();
  std::vector<int64_t> teacher_predicted;
  if (options.teacher != nullptr) {
    teacher_predicted = argmax(options.teacher->forward(x).logits).to(Device::cpu()).to_vector<int64_t>();
  }
  for (size_t r : rows) {
    EvalSample sample;
    sample.index = batch.indices[r];
    sample.image = data::Image(h, w, 3);
    sample.labels = data::Image(h, w, 1);
    std::copy_n(images.begin() + static_cast<std::ptrdiff_t>(r * pixels * 3), pixels * 3, sample.image.pixels.begin());
    std::copy_n(labels.begin() + static_cast<std::ptrdiff_t>(r * pixels), pixels, sample.labels.pixels.begin());
    sample.prediction = prediction_row(predicted, r, h, w);
    if (options.teacher != nullptr) sample.teacher_prediction = prediction_row(teacher_predicted, r, h, w);
    options.on_sample(std::move(sample));
  }
}

}  // namespace

SegmentationScores evaluate_model(models::SegmentationModel& model, const data::Dataset& dataset,
                                  const std::vector<int64_t>& subset, const LabelTable& table, int num_classes,
                                  const EvalOptions& options, ProgressBar* progress) {
  // An empty subset means "every sample" to the loader: refuse it here instead.
  check(!subset.empty(), "evaluate: no images to evaluate in ", dataset.root(), " (", dataset.split(), ")");
  const bool was_training = model.is_training();
  model.eval();
  const bool teacher_was_training = options.teacher != nullptr && options.teacher->is_training();
  if (options.teacher != nullptr) options.teacher->eval();
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
  const bool distributed = options.world != nullptr && options.world->world_size() > 1;
  if (distributed) loader_options.shard = {options.world->rank(), options.world->world_size()};
  data::Loader loader(dataset, loader_options);
  ConfusionMatrix matrix(num_classes);
  const int64_t batches = loader.batches_per_epoch();
  if (progress != nullptr) progress->start("eval", batches, 0);
  int64_t done = 0, images = 0;
  data::DevicePrefetcher prefetcher(loader, options.device, data::DevicePrefetcher::LabelsOn::host);
  prefetcher.start_epoch(0);
  int stopped_by = 0;
  while (std::optional<data::Batch> batch = prefetcher.next()) {
    Tensor x = normalize_image(batch->images);
    models::ForwardResult result = model.forward(x);
    const Tensor prediction = argmax(result.logits).to(Device::cpu());
    matrix.update(prediction, batch->labels);
    if (options.on_sample) give_samples(*batch, x, prediction, options);
    ++done;
    images += static_cast<int64_t>(batch->indices.size());
    if (progress != nullptr) progress->update(done, "", cat(batch->indices.size(), " images"), done == batches);
    // A request during the last batch changes nothing: the scores are complete.
    stopped_by = options.stop != nullptr && done < batches && !distributed ? options.stop->requested() : 0;
    if (stopped_by != 0) break;
  }
  if (progress != nullptr) progress->finish();
  model.train(was_training);
  if (options.teacher != nullptr) options.teacher->train(teacher_was_training);
  if (stopped_by != 0) {
    throw Interrupted(stopped_by, cat("the evaluation stopped by ", signal_name(stopped_by), " after ", done, " of ",
                                      batches, " batches"));
  }
  if (distributed) {
    // Pixel counts are exact in f64 below 2^53.
    std::vector<double> counts(matrix.counts().begin(), matrix.counts().end());
    counts.push_back(static_cast<double>(images));
    Tensor summed = Tensor::from_vector(counts, {static_cast<int64_t>(counts.size())}, Device::cpu()).to(DType::f64);
    options.world->all_reduce_sum(summed);
    std::vector<int64_t> totals = summed.to_vector<int64_t>();
    images = totals.back();
    totals.pop_back();
    matrix.reset();
    matrix.add_counts(totals);
  }
  SegmentationScores scores = compute_scores(matrix);
  scores.images = images;
  return scores;
}

}  // namespace strata::incremental

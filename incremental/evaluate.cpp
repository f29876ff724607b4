#include "incremental/evaluate.h"

#include <optional>

#include "data/device_prefetcher.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/argmax.h"
#include "engine/ops/normalize.h"

namespace strata::incremental {

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
  int64_t done = 0, images = 0;
  data::DevicePrefetcher prefetcher(loader, options.device, data::DevicePrefetcher::LabelsOn::host);
  prefetcher.start_epoch(0);
  int stopped_by = 0;
  while (std::optional<data::Batch> batch = prefetcher.next()) {
    Tensor x = normalize_image(batch->images);
    models::ForwardResult result = model.forward(x);
    matrix.update(argmax(result.logits).to(Device::cpu()), batch->labels);
    ++done;
    images += static_cast<int64_t>(batch->indices.size());
    if (progress != nullptr) progress->update(done, "", cat(batch->indices.size(), " images"), done == batches);
    // A request during the last batch changes nothing: the scores are complete.
    stopped_by = options.stop != nullptr && done < batches ? options.stop->requested() : 0;
    if (stopped_by != 0) break;
  }
  if (progress != nullptr) progress->finish();
  model.train(was_training);
  if (stopped_by != 0) {
    throw Interrupted(stopped_by, cat("the evaluation stopped by ", signal_name(stopped_by), " after ", done, " of ",
                                      batches, " batches"));
  }
  SegmentationScores scores = compute_scores(matrix);
  scores.images = images;
  return scores;
}

}  // namespace strata::incremental

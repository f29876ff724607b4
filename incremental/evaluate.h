// Evaluation of a segmentation model on a test set (SPEC-continual.md §2.5, §5): the images of a
// subset, labels through the step's test table, the model in eval mode under no-grad, argmax of
// the upsampled logits into a confusion matrix (incremental/metrics.h), then the scores.
//
//   images: 512-style centre crop after a shorter-side resize at `crop_size` (data::LoaderMode::eval),
//           or whole images with batch 1 (full_image); labels u8 after `table`
//   -> SegmentationScores over `num_classes` channels, `images` = the images evaluated
//
// Errors (strata::Error): an empty subset (naming the dataset's root and split), the loader's read
// errors (naming the file), the model's errors for its input. Under the dataset's skip_bad an image
// the loader cannot read is logged and left out, and not counted in `images`. A raised `stop` flag
// ends the evaluation after the current batch with strata::Interrupted (the model's mode restored).
//
// Samples: the images of `sample_indices` (dataset indices), or every image with `every_sample`, go
// to `on_sample` with the labels and the prediction the evaluation saw (channel indices, 255
// ignored), for pictures (incremental/prediction_images.h: --save-predictions, the trainer's
// TensorBoard samples); they cost one host copy of their batch. With a `teacher` (the previous
// step's model), its prediction of those images comes too: one more forward of their batches.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "engine/device.h"
#include "engine/distributed/communicator.h"
#include "engine/interrupt.h"
#include "incremental/metrics.h"
#include "incremental/protocol.h"
#include "incremental/report.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

// One evaluated image: RGB pixels as the model saw them, its labels and the prediction (1 channel each).
struct EvalSample {
  int64_t index = 0;  // in the dataset
  data::Image image, labels, prediction;
  data::Image teacher_prediction;  // empty without EvalOptions::teacher
};

struct EvalOptions {
  int crop_size = 512;
  int batch_size = 24;
  bool full_image = false;  // whole images, batch 1
  int workers = 2;
  Device device;
  const StopFlag* stop = nullptr;  // raised: stop after the current batch (throws Interrupted)
  std::vector<int64_t> sample_indices;  // dataset indices to give to on_sample
  bool every_sample = false;            // every image to on_sample
  std::function<void(EvalSample&&)> on_sample;
  models::SegmentationModel* teacher = nullptr;  // also its prediction of the samples (eval mode, no grad)
  // Data-parallel evaluation: each rank evaluates its shard of the subset (data::LoaderOptions::shard,
  // no padding) and the confusion matrices are summed over the ranks, so every rank's scores are those
  // of the whole subset, as one process's. Samples (on_sample) are the rank's own. `stop` is read only
  // at the end (the ranks' batch counts may differ by one, and a rank leaving early would leave the
  // others waiting in the sum); the trainer stops at its next iteration instead.
  distributed::Communicator* world = nullptr;
};

// Evaluates `model` (eval mode and no-grad during the call; its mode is restored) on the `subset`
// of `dataset` with labels through `table`, over `num_classes` channels. `progress` may be null.
SegmentationScores evaluate_model(models::SegmentationModel& model, const data::Dataset& dataset,
                                  const std::vector<int64_t>& subset, const LabelTable& table, int num_classes,
                                  const EvalOptions& options, ProgressBar* progress = nullptr);

}  // namespace strata::incremental

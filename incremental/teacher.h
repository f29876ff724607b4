// The teacher (SPEC-continual.md §4.3): the previous step's model, built with the classes of steps
// 0..t-1, loaded strictly from that step's checkpoint weights, frozen (no parameter requires a
// gradient), in eval mode (batch norm uses its running statistics), and run under no-grad on the
// same normalised batch as the student, with the same models::ForwardOptions the student's forward
// takes (Method::forward_options): the logits always, upsampled to the input like the student's,
// and only the maps asked for (the backbone output for ILT).
//
//   images (N,H,W,3) f32 normalised -> models::ForwardResult{logits (N,H,W,C_old), the maps asked for}
//
// Errors (strata::Error naming the source): weights that do not match the model exactly (missing,
// unexpected or mis-shaped keys, via models::load_weights in full mode); the model's own errors for
// images or options it refuses (SegmentationModel::forward).
#pragma once

#include <memory>
#include <string>

#include "engine/device.h"
#include "engine/safetensors.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

class Teacher {
 public:
  // Builds the model of `config`, loads `weights` (every key, nothing else; `source` names them in
  // messages), freezes it and moves it to `device`.
  Teacher(const models::ModelConfig& config, const TensorMap& weights, const std::string& source,
          const Device& device);
  // Freezes an existing model (e.g. a benchmark's randomly initialised previous-step model).
  explicit Teacher(std::shared_ptr<models::SegmentationModel> model);

  models::ForwardResult run(const Tensor& images, const models::ForwardOptions& options);

  int64_t channels() const;  // C_old
  models::SegmentationModel& model() { return *model_; }

 private:
  void freeze();

  std::shared_ptr<models::SegmentationModel> model_;
};

}  // namespace strata::incremental

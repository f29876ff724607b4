// The teacher (SPEC-continual.md §4.3): the previous step's model, built with the classes of steps
// 0..t-1, loaded strictly from that step's checkpoint weights, frozen (no parameter requires a
// gradient), in eval mode (batch norm uses its running statistics), and run without a graph on the
// same normalised batch as the student, with the same models::ForwardOptions the student's forward
// takes (Method::forward_options): the logits always, upsampled to the input like the student's,
// and only the maps asked for (the backbone output for ILT).
//
//   images (N,H,W,3) f32 normalised -> models::ForwardResult{logits (N,H,W,C_old), the maps asked for}
//
// Two ways to run it, chosen at construction (the step start):
//   folded (default)  models::FoldedSegmentationModel: every batch norm / In-place ABN folded into
//                     the convolution before it once, the activation (and a residual sum) in the
//                     convolution's epilogue, the classifier's steps in one GEMM; no autograd
//                     records, each map freed as soon as its consumer ran. Only the folded weights
//                     are kept (the loaded model is dropped). Equal to the unfolded forward within
//                     float rounding (the folded weights round once more), not bit for bit.
//   unfolded          the model's own forward in eval mode under autograd::NoGradGuard: the
//                     reference the folded teacher is tested and benchmarked against (`strata train
//                     --unfolded-teacher`, `strata bench teacher`).
//
// Errors (strata::Error naming the source): weights that do not match the model exactly (missing,
// unexpected or mis-shaped keys, via models::load_weights in full mode); the model's own errors for
// images or options it refuses (SegmentationModel::forward); model() on a folded teacher.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/safetensors.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

enum class TeacherForward { folded, unfolded };

class Teacher {
 public:
  // Builds the model of `config`, loads `weights` (every key, nothing else; `source` names them in
  // messages), freezes it, moves it to `device` and, by default, folds it.
  Teacher(const models::ModelConfig& config, const TensorMap& weights, const std::string& source, const Device& device,
          TeacherForward forward = TeacherForward::folded);
  // Freezes an existing model (e.g. a benchmark's randomly initialised previous-step model): its
  // parameters stop requiring gradients and it is put in eval mode, then folded by default.
  explicit Teacher(std::shared_ptr<models::SegmentationModel> model, TeacherForward forward = TeacherForward::folded);

  models::ForwardResult run(const Tensor& images, const models::ForwardOptions& options);

  int64_t channels() const { return channels_; }                // C_old
  int64_t parameter_count() const { return parameter_count_; }  // of the model it was built from
  int64_t weight_bytes() const;  // what it holds: the folded weights, or the model's parameters and buffers
  std::vector<Tensor> weights() const;  // those tensors themselves
  TeacherForward forward_kind() const { return folded_ ? TeacherForward::folded : TeacherForward::unfolded; }
  // The unfolded model (throws for a folded teacher, which keeps only its folded weights).
  models::SegmentationModel& model();

 private:
  void freeze(TeacherForward forward);

  std::shared_ptr<models::SegmentationModel> model_;         // unfolded only
  std::unique_ptr<models::FoldedSegmentationModel> folded_;  // folded only
  int64_t channels_ = 0, parameter_count_ = 0;
};

const char* teacher_forward_name(TeacherForward forward);  // "folded" / "unfolded"

}  // namespace strata::incremental

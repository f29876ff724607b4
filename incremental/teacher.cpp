#include "incremental/teacher.h"

#include "engine/autograd.h"
#include "models/weights.h"

namespace strata::incremental {

const char* teacher_forward_name(TeacherForward forward) {
  return forward == TeacherForward::folded ? "folded" : "unfolded";
}

Teacher::Teacher(const models::ModelConfig& config, const TensorMap& weights, const std::string& source,
                 const Device& device, TeacherForward forward) {
  models::ModelConfig built = config;
  // Every parameter is overwritten by the weights: skip the reference initialisation.
  built.initialize = false;
  model_ = std::make_shared<models::SegmentationModel>(built);
  models::load_weights(*model_, weights, models::LoadMode::full, source);
  model_->to(device);
  freeze(forward);
}

Teacher::Teacher(std::shared_ptr<models::SegmentationModel> model, TeacherForward forward) : model_(std::move(model)) {
  check(model_ != nullptr, "Teacher: no model");
  freeze(forward);
}

void Teacher::freeze(TeacherForward forward) {
  for (auto& [name, parameter] : model_->named_parameters()) {
    Tensor p = parameter;
    p.set_grad(Tensor());
    p.set_requires_grad(false);
  }
  model_->eval();
  channels_ = model_->classifier().total_classes();
  parameter_count_ = model_->parameter_count();
  if (forward == TeacherForward::folded) {
    folded_ = std::make_unique<models::FoldedSegmentationModel>(*model_);
    // The folded weights are copies: holding the model too would keep the teacher's weights twice.
    model_.reset();
  }
}

models::ForwardResult Teacher::run(const Tensor& images, const models::ForwardOptions& options) {
  if (folded_) return folded_->forward(images, options);
  autograd::NoGradGuard no_grad;
  return model_->forward(images, options);
}

int64_t Teacher::weight_bytes() const {
  if (folded_) return folded_->bytes();
  int64_t total = 0;
  for (const auto& [name, t] : model_->state_dict()) total += static_cast<int64_t>(t.nbytes());
  return total;
}

std::vector<Tensor> Teacher::weights() const {
  if (folded_) return folded_->weights();
  std::vector<Tensor> out;
  for (const auto& [name, t] : model_->state_dict()) out.push_back(t);
  return out;
}

models::SegmentationModel& Teacher::model() {
  check(model_ != nullptr,
        "Teacher: a folded teacher keeps only its folded weights, not the model (construct it "
        "with TeacherForward::unfolded to reach the model)");
  return *model_;
}

}  // namespace strata::incremental

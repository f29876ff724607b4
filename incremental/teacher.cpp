#include "incremental/teacher.h"

#include "engine/autograd.h"
#include "models/weights.h"

namespace strata::incremental {

Teacher::Teacher(const models::ModelConfig& config, const TensorMap& weights, const std::string& source,
                 const Device& device) {
  models::ModelConfig built = config;
  // Every parameter is overwritten by the weights: skip the reference initialisation.
  built.initialize = false;
  model_ = std::make_shared<models::SegmentationModel>(built);
  models::load_weights(*model_, weights, models::LoadMode::full, source);
  model_->to(device);
  freeze();
}

Teacher::Teacher(std::shared_ptr<models::SegmentationModel> model) : model_(std::move(model)) {
  check(model_ != nullptr, "Teacher: no model");
  freeze();
}

void Teacher::freeze() {
  for (auto& [name, parameter] : model_->named_parameters()) {
    Tensor p = parameter;
    p.set_grad(Tensor());
    p.set_requires_grad(false);
  }
  model_->eval();
}

models::ForwardResult Teacher::run(const Tensor& images, const models::ForwardOptions& options) {
  autograd::NoGradGuard no_grad;
  return model_->forward(images, options);
}

int64_t Teacher::channels() const { return model_->classifier().total_classes(); }

}  // namespace strata::incremental

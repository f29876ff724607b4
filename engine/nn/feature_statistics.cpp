#include "engine/nn/feature_statistics.h"

#include "engine/nn/normalization.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace strata::nn {

namespace {

template <class Norm>
void attach(Norm& norm, const std::string& name, std::vector<NormInput>& inputs,
            std::vector<std::function<void()>>& detach) {
  norm.set_input_observer([&norm, name, &inputs](const Tensor& x) {
    inputs.push_back({name, x, norm.running_mean(), norm.running_var()});
  });
  detach.push_back([&norm] { norm.set_input_observer({}); });
}

void attach_all(Module& module, const std::string& name, std::vector<NormInput>& inputs,
                std::vector<std::function<void()>>& detach) {
  // InPlaceABN is not a BatchNorm2d, and BatchNormReLU (models/blocks.h) is one.
  if (auto* abn = dynamic_cast<InPlaceABN*>(&module)) attach(*abn, name, inputs, detach);
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&module)) attach(*bn, name, inputs, detach);
  for (const auto& [child_name, child] : module.children()) {
    attach_all(*child, name.empty() ? child_name : name + "." + child_name, inputs, detach);
  }
}

// ||d||_2 of a vector, differentiable away from d = 0.
Tensor l2_norm(const Tensor& d) { return pow(sum(square(d)), 0.5); }

}  // namespace

NormInputRecorder::NormInputRecorder(Module& model) {
  attach_all(model, "", inputs_, detach_);
  check(!detach_.empty(), "NormInputRecorder: the model has no BatchNorm2d or InPlaceABN layer");
}

NormInputRecorder::~NormInputRecorder() {
  for (const auto& detach : detach_) detach();
}

Tensor feature_statistics_loss(const std::vector<NormInput>& inputs, double first_layer_weight) {
  check(!inputs.empty(), "feature_statistics_loss: no normalisation layer input was recorded");
  Tensor loss;
  for (size_t l = 0; l < inputs.size(); ++l) {
    const NormInput& in = inputs[l];
    const Tensor& x = in.input;
    check(x.dim() == 4, "feature_statistics_loss: the input of '", in.layer, "' must be (N,H,W,C), got ", x.describe());
    const int64_t channels = x.size(3);
    for (const Tensor* running : {&in.running_mean, &in.running_var}) {
      check(running->dim() == 1 && running->size(0) == channels && running->dtype() == x.dtype() &&
                running->device() == x.device(),
            "feature_statistics_loss: the running statistics of '", in.layer, "' must be (", channels, ") like ",
            x.describe(), ", got ", running->describe());
    }
    // Every pixel of every image as one row of a (1, N*H*W, 1, C) map, so mean_spatial takes the
    // statistics over N, H and W at once.
    Tensor rows = x.contiguous().reshape({1, -1, 1, channels});
    Tensor mu = mean_spatial(rows);                    // (1,1,1,C)
    Tensor var = mean_spatial(square(sub(rows, mu)));  // (1,1,1,C), biased
    Tensor term = add(l2_norm(sub(mu.reshape({channels}), in.running_mean.detach())),
                      l2_norm(sub(var.reshape({channels}), in.running_var.detach())));
    if (l == 0) term = scale(term, first_layer_weight);
    loss = loss.defined() ? add(loss, term) : term;
  }
  return loss;
}

}  // namespace strata::nn

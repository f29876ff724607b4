#include "models/classifier.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/channels.h"

namespace strata::models {

IncrementalClassifier::IncrementalClassifier(int64_t in_channels, const std::vector<int64_t>& classes_per_step,
                                             Generator& generator)
    : in_channels_(in_channels) {
  check(!classes_per_step.empty(), "IncrementalClassifier: needs at least one step");
  for (int64_t classes : classes_per_step) add_step(classes, generator);
}

void IncrementalClassifier::add_step(int64_t classes, Generator& generator) {
  check(classes >= 1, "IncrementalClassifier: step ", convs_.size(), " must have at least one class, got ", classes);
  auto conv = std::make_shared<nn::Conv2d>(in_channels_, classes, 1, generator);
  register_module(std::to_string(convs_.size()), conv);
  convs_.push_back(std::move(conv));
}

void IncrementalClassifier::init_balanced_new_step() {
  check(convs_.size() >= 2, "IncrementalClassifier: MiB's balanced initialisation needs a new step after step 0, ",
        "but the classifier has ", convs_.size(), " step");
  autograd::NoGradGuard no_grad;
  nn::Conv2d& old = *convs_.front();
  nn::Conv2d& added = *convs_.back();
  const int64_t n_new = added.out_channels();
  const double shift = std::log(static_cast<double>(n_new + 1));
  // Weights are (K,1,1,C): row k is output channel k's C contiguous weights.
  visit_floating("IncrementalClassifier::init_balanced_new_step", old.weight().dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* background_row = old.weight().data<T>();
    T* new_weights = added.weight().data<T>();
    T* new_bias = added.bias().data<T>();
    T* old_bias = old.bias().data<T>();
    const T background_bias = static_cast<T>(static_cast<double>(old_bias[0]) - shift);
    for (int64_t c = 0; c < n_new; ++c) {
      std::copy(background_row, background_row + in_channels_, new_weights + c * in_channels_);
      new_bias[c] = background_bias;
    }
    old_bias[0] = background_bias;
  });
}

Tensor IncrementalClassifier::forward(const Tensor& features) {
  if (convs_.size() == 1) return convs_.front()->forward(features);
  std::vector<Tensor> logits;
  for (auto& conv : convs_) logits.push_back(conv->forward(features));
  return concat(logits);
}

FoldedConv IncrementalClassifier::fold() const {
  std::vector<FoldedConv> steps;
  for (const auto& conv : convs_) steps.emplace_back(*conv);
  return steps.size() == 1 ? steps.front() : FoldedConv::concat_outputs(steps);
}

Shape IncrementalClassifier::trace(const Shape& in, SummaryBuilder& builder) const {
  Shape y;
  for (size_t i = 0; i < convs_.size(); ++i) y = builder.conv(std::to_string(i), *convs_[i], in);
  if (convs_.size() > 1) y = builder.op("", "concat", {in[0], in[1], in[2], total_classes()});
  return y;
}

int64_t IncrementalClassifier::total_classes() const {
  int64_t total = 0;
  for (const auto& conv : convs_) total += conv->out_channels();
  return total;
}

std::vector<int64_t> IncrementalClassifier::classes_per_step() const {
  std::vector<int64_t> out;
  for (const auto& conv : convs_) out.push_back(conv->out_channels());
  return out;
}

nn::Conv2d& IncrementalClassifier::step(int64_t step) {
  check(step >= 0 && step < steps(), "IncrementalClassifier: step ", step, " out of range [0, ", steps(), ")");
  return *convs_[step];
}

}  // namespace strata::models

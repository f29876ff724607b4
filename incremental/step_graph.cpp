#include "incremental/step_graph.h"

#include <algorithm>
#include <utility>

#include "engine/caching_allocator.h"
#include "engine/error.h"

namespace strata::incremental {

StepGraph::StepGraph(const Device& device, optim::SGD& optimizer, optim::PolyLR& schedule,
                     std::vector<Tensor> parameters, EagerIteration eager, int warmup)
    : device_(device),
      optimizer_(optimizer),
      schedule_(schedule),
      parameters_(std::move(parameters)),
      eager_(std::move(eager)),
      warmup_(warmup) {
  check(warmup >= 1, "StepGraph: warmup must be >= 1 eager iteration, got ", warmup);
  optimizer_.use_device_lr(device_);
}

void StepGraph::reset() {
  entry_.reset();
  streak_ = 0;
}

IterationStats StepGraph::train_iteration(const Tensor& images, const Tensor& labels, int64_t replayed) {
  const Shape shape{images.shape(), labels.shape(), images.dtype(), labels.dtype(), replayed};
  if (entry_ && entry_->captured && entry_->shape == shape) return launch(images, labels);
  if (!(shape == streak_shape_)) {
    streak_shape_ = shape;
    streak_ = 0;
  }
  ++streak_;
  optimizer_.write_device_lr();
  const bool eager_only = std::find(eager_only_.begin(), eager_only_.end(), shape) != eager_only_.end();
  if (streak_ <= warmup_ || eager_only || device_.context == nullptr) return eager_(images, labels, replayed);

  if (streak_ == warmup_ + 1) {
    // Primed: this iteration runs eagerly with its allocations in the new graph's pool.
    entry_.reset();
    auto entry = std::make_unique<Entry>();
    entry->graph = device_.context->create_graph();
    if (!entry->graph) return eager_(images, labels, replayed);
    entry->shape = shape;
    entry->images = Tensor::empty(images.shape(), images.dtype(), device_);
    entry->labels = Tensor::empty(labels.shape(), labels.dtype(), device_);
    entry->images.copy_(images);
    entry->labels.copy_(labels);
    IterationStats stats;
    entry->graph->prime([&] { stats = eager_(entry->images, entry->labels, replayed); });
    entry_ = std::move(entry);
    return stats;
  }

  // Captured, then launched as this iteration.
  check(entry_ && entry_->shape == shape, "StepGraph: internal error: no primed graph for the shape to capture");
  Entry& entry = *entry_;
  entry.images.copy_(images);
  entry.labels.copy_(labels);
  const int64_t iteration = schedule_.iteration();
  const int64_t steps = optimizer_.steps();
  try {
    entry.graph->capture([&] { entry.outputs = eager_(entry.images, entry.labels, replayed); });
  } catch (const PoolExhaustedError&) {
    // The host part of the iteration stopped inside the step, before the schedule moved on.
    check(schedule_.iteration() == iteration && optimizer_.steps() == steps,
          "StepGraph: a failed capture advanced the schedule");
    entry_.reset();
    eager_only_.push_back(shape);
    return eager_(images, labels, replayed);
  }
  entry.captured = true;
  ++captures_;
  entry.grads.clear();
  for (const Tensor& p : parameters_) entry.grads.push_back(p.grad());
  // The captured host pass already advanced the schedule and SGD's count: launch() must not again.
  const double lr = entry.outputs.lr;
  entry.graph->launch();
  ++replays_;
  IterationStats stats = entry.outputs;
  stats.loss = entry.outputs.loss.clone();
  stats.terms = entry.outputs.terms.clone();
  stats.lr = lr;
  return stats;
}

IterationStats StepGraph::launch(const Tensor& images, const Tensor& labels) {
  Entry& entry = *entry_;
  entry.images.copy_(images);
  entry.labels.copy_(labels);
  for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i].set_grad(entry.grads[i]);
  const double lr = schedule_.lr();
  optimizer_.write_device_lr();
  entry.graph->launch();
  ++replays_;
  optimizer_.note_replayed_step();
  schedule_.step();
  IterationStats stats = entry.outputs;
  stats.loss = entry.outputs.loss.clone();
  stats.terms = entry.outputs.terms.clone();
  stats.lr = lr;
  return stats;
}

}  // namespace strata::incremental

// StepGraph: CUDA graphs for the training step (issue 14). After warm-up, one training iteration's
// device work (teacher forward, student forward, losses, backward, SGD) is captured once per input
// shape and then replayed by one cudaGraphLaunch, instead of a few hundred launches issued by the
// host one by one. StepSession::train_iteration goes through it when StepSetup::cuda_graphs is set.
//
// Per input shape (images and labels shapes and dtypes, replayed rows), consecutive iterations:
//   1 .. warmup        eager (cuDNN picks its algorithms, momentum buffers and lazy state appear);
//   warmup + 1         eager, with the step's allocations routed to a new graph's private pool
//                      (engine/caching_allocator.h), which it sizes; inputs copied into the graph's
//                      static input tensors first, as for every later iteration;
//   warmup + 2         captured (nothing runs), then launched: the iteration this call stands for;
//   later              the batch is copied into the static inputs, the graph is launched.
// A shape change therefore re-captures once the new shape has repeated warmup + 2 times; until then
// (and for a shape that never repeats, e.g. an epoch's short last batch) iterations run eagerly and
// the captured graph stays, so the steady shape replays again afterwards. Capturing another shape
// destroys the previous graph (one graph, one pool's memory at a time).
//
// What a replay cannot redo by itself, done here on the host: the lr lives in a device scalar the
// captured SGD kernels read (SGD::use_device_lr), written before every iteration, so each replay uses
// the poly schedule's current lr (a captured kernel argument would repeat the capture's lr forever);
// the schedule and SGD's step count advance; the parameters' gradients are pointed back at the
// graph's gradient tensors (an eager iteration in between replaced them); the loss values returned
// are copies of the graph's output tensors, which the next replay overwrites. Deferred label checks
// are made again after each launch (engine/cuda/graph.h).
//
// When graphs do not apply, every iteration is eager: the CPU; a CUDA device without a graph
// (DeviceContext::create_graph: STRATA_CUDA_NO_CACHING, STRATA_CUDA_SYNC); decided by the caller
// (StepSession: methods with a regularizer, whose importance keeps host state per iteration;
// --detect-anomaly, which reads values back inside the step; models with dropout, whose host-side
// mask counter a capture would freeze). A capture whose private pool would have to grow (the primed
// iteration asked for less) falls back to eager for that shape; any other capture failure (a host
// synchronisation inside the step) throws strata::Error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/device_context.h"
#include "engine/optim/sgd.h"
#include "engine/tensor.h"
#include "incremental/step_session.h"

namespace strata::incremental {

class StepGraph {
 public:
  // One eager training iteration (StepSession's), on any inputs.
  using EagerIteration = std::function<IterationStats(const Tensor& images, const Tensor& labels, int64_t replayed)>;

  // `parameters`: every parameter the optimizer updates (their gradients are the graph's outputs).
  StepGraph(const Device& device, optim::SGD& optimizer, optim::PolyLR& schedule, std::vector<Tensor> parameters,
            EagerIteration eager, int warmup = 1);

  // One training iteration, eager, primed, captured or replayed (see the file comment).
  IterationStats train_iteration(const Tensor& images, const Tensor& labels, int64_t replayed);

  // Drops the graph (e.g. after a checkpoint replaced the momentum buffers it writes).
  void reset();

  int64_t captures() const { return captures_; }  // successful captures so far
  int64_t replays() const { return replays_; }    // launches of a captured graph, the first included

 private:
  struct Shape {
    std::vector<int64_t> images, labels;
    DType images_dtype = DType::f32, labels_dtype = DType::f32;
    int64_t replayed = 0;
    bool operator==(const Shape&) const = default;
  };
  struct Entry {
    Shape shape;
    std::unique_ptr<DeviceGraph> graph;
    Tensor images, labels;      // the static inputs the captured work reads
    IterationStats outputs;     // the captured iteration's loss tensors, rewritten by each replay
    std::vector<Tensor> grads;  // the captured gradients, one per parameter (undefined: none)
    bool captured = false;
  };

  IterationStats launch(const Tensor& images, const Tensor& labels);

  Device device_;
  optim::SGD& optimizer_;
  optim::PolyLR& schedule_;
  std::vector<Tensor> parameters_;
  EagerIteration eager_;
  int warmup_;
  std::unique_ptr<Entry> entry_;
  Shape streak_shape_;
  int64_t streak_ = 0;
  std::vector<Shape> eager_only_;  // shapes whose capture outgrew the primed pool
  int64_t captures_ = 0, replays_ = 0;
};

}  // namespace strata::incremental

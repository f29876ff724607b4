// Reverse-mode automatic differentiation.
//
// Each op's forward calls record(op, output, inputs, backward_fn). When grad mode is on and some
// input requires a gradient, this attaches a Node to the output holding backward_fn, whose lambda
// captures exactly what that op's backward needs (its "saved tensors"). backward(root) then runs
// the nodes reachable from root in reverse topological order, sums the gradients flowing into each
// node, accumulates gradients of leaves into their .grad(), and destroys each node's backward_fn
// (freeing its saved tensors) as soon as it has run. Running backward a second time through the
// same nodes is therefore an error, not a silent wrong answer.
//
// Rules for op authors:
// - capture saved tensors with save(t): a detached handle to the same storage. Capturing the
//   output itself without detaching would make output -> node -> output a reference cycle.
// - backward_fn(grad_output, needs_grad) returns one gradient per input, in input order; it must
//   return a defined gradient of the input's shape for every input with needs_grad[i], and may
//   return undefined tensors for the others. It runs with grad mode off.
// - gradients are never modified in place after they are returned (they may be shared).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace strata::autograd {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<bool>& needs_grad)>;

class Node {
 public:
  struct Edge {
    std::shared_ptr<Node> producer;    // set when the input is the output of a recorded op
    std::shared_ptr<TensorImpl> leaf;  // set when the input is a leaf that requires grad
    Shape shape;                       // the input's shape and dtype, to check its gradient
    DType dtype = DType::f32;
    bool needs_grad() const { return producer != nullptr || leaf != nullptr; }
  };

  Node(std::string op, std::vector<Edge> edges, Shape output_shape, DType output_dtype, BackwardFn fn);
  const std::string& op() const { return op_; }
  const std::vector<Edge>& edges() const { return edges_; }
  const Shape& output_shape() const { return output_shape_; }
  DType output_dtype() const { return output_dtype_; }
  bool released() const { return !fn_; }

  // Runs the backward function (grad mode off), checks the gradients' shapes, then frees the
  // saved tensors. Returns one gradient per edge (undefined where no gradient is needed).
  std::vector<Tensor> run(const Tensor& grad_output);

 private:
  void check_backward_anomaly(const Tensor& grad_output, const std::vector<Tensor>& grads) const;

  std::string op_;
  std::vector<Edge> edges_;
  Shape output_shape_;
  DType output_dtype_;
  BackwardFn fn_;
};

bool grad_enabled();

// Disables recording in its scope (evaluation, the frozen teacher, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Anomaly detection (PyTorch's detect_anomaly; `strata train --detect-anomaly`): in its scope
// every op's output, recorded or not (the teacher's too), and every gradient a backward function
// returns is checked for NaN and Inf, and the first non-finite one throws an AnomalyError naming the
// op, the tensor, and whether the op's own inputs were already non-finite (then the value came from
// outside the graph: a parameter, the data, or an op that is not checked). One host read per op:
// for debugging, not for training runs. Per thread, like grad mode; nests.
class AnomalyModeGuard {
 public:
  explicit AnomalyModeGuard(bool enabled = true);
  ~AnomalyModeGuard();
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool previous_;
};

bool anomaly_mode();

struct AnomalyError : Error {
  using Error::Error;
};

// The forward check anomaly mode makes: a no-op outside it. record() calls it for every op; ops
// that record no graph (the folded teacher's conv2d_activation) call it themselves.
void check_forward_anomaly(const char* op, const Tensor& output, const std::vector<Tensor>& inputs);

// True when grad mode is on and at least one defined input requires a gradient: the test an op
// uses before computing anything it would only need for backward.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// A handle to t's storage without its history, for capture in a backward function.
inline Tensor save(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

// Attaches a node to `output` if any input requires a gradient (and grad mode is on).
// Undefined inputs (an absent bias) are allowed and never receive a gradient.
void record(const char* op, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn);

// Backpropagates from `root`. grad_output defaults to 1 for a one-element root; a root with more
// elements needs an explicit gradient of its shape. Throws if root does not require grad or if the
// graph was already freed by an earlier backward.
//
// on_leaf_ready, when given, is called once for every leaf the pass delivers a gradient to, as soon
// as its last contribution has been accumulated (its .grad() is final for this pass), in the pass's
// (deterministic) order: data-parallel training starts reducing gradients while backward still runs
// (engine/distributed/data_parallel.h).
using LeafReady = std::function<void(const TensorImpl& leaf)>;
void backward(const Tensor& root, const Tensor& grad_output = Tensor(), const LeafReady& on_leaf_ready = {});

}  // namespace strata::autograd

#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/finite.h"
#include "engine/ops/elementwise.h"

namespace strata::autograd {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_mode = false;
thread_local bool t_checking = false;  // inside a check: the check's own ops are not checked

// Forward checks are off for the ops a check itself runs, and inside a backward function (its
// gradients are checked as a whole when it returns, naming the op whose backward it is).
class CheckingScope {
 public:
  CheckingScope() : previous_(t_checking) { t_checking = true; }
  ~CheckingScope() { t_checking = previous_; }
  CheckingScope(const CheckingScope&) = delete;
  CheckingScope& operator=(const CheckingScope&) = delete;

 private:
  bool previous_;
};

// "; its input 1 (f32[...] on cpu) was already non-finite, ..." for the first non-finite input,
// else "; its inputs were finite".
std::string inputs_note(const std::vector<Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (all_finite(inputs[i])) continue;
    return cat("; its input ", i, " (", inputs[i].describe(),
               ") was already non-finite, so the value comes from outside the checked ops (a parameter, the data, "
               "or an op that records nothing)");
  }
  return "; its inputs were finite";
}

}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

AnomalyModeGuard::AnomalyModeGuard(bool enabled) : previous_(t_anomaly_mode) { t_anomaly_mode = enabled; }
AnomalyModeGuard::~AnomalyModeGuard() { t_anomaly_mode = previous_; }

bool anomaly_mode() { return t_anomaly_mode; }

void check_forward_anomaly(const char* op, const Tensor& output, const std::vector<Tensor>& inputs) {
  if (!t_anomaly_mode || t_checking) return;
  CheckingScope checking;
  if (all_finite(output)) return;
  throw AnomalyError(cat("detect-anomaly: the forward of '", op, "' produced a NaN or an Inf in its output ",
                         output.describe(), inputs_note(inputs)));
}

Node::Node(std::string op, std::vector<Edge> edges, Shape output_shape, DType output_dtype, BackwardFn fn)
    : op_(std::move(op)),
      edges_(std::move(edges)),
      output_shape_(std::move(output_shape)),
      output_dtype_(output_dtype),
      fn_(std::move(fn)) {}

void Node::check_backward_anomaly(const Tensor& grad_output, const std::vector<Tensor>& grads) const {
  CheckingScope checking;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (all_finite(grads[i])) continue;
    throw AnomalyError(cat("detect-anomaly: the backward of '", op_,
                           "' produced a NaN or an Inf in the gradient of its input ", i, ", ", grads[i].describe(),
                           all_finite(grad_output) ? "; the gradient of its output was finite"
                                                   : "; the gradient of its output was already non-finite"));
  }
}

std::vector<Tensor> Node::run(const Tensor& grad_output) {
  check(fn_ != nullptr, "backward: the graph through '", op_,
        "' was already freed by an earlier backward (saved tensors are released after use)");
  std::vector<bool> needs(edges_.size());
  for (size_t i = 0; i < edges_.size(); ++i) needs[i] = edges_[i].needs_grad();
  std::vector<Tensor> grads;
  {
    NoGradGuard no_grad;
    CheckingScope backward_function;
    grads = fn_(grad_output, needs);
  }
  fn_ = nullptr;  // frees the saved tensors now
  check(grads.size() == edges_.size(), "backward of '", op_, "' returned ", grads.size(), " gradients for ",
        edges_.size(), " inputs");
  for (size_t i = 0; i < edges_.size(); ++i) {
    if (!needs[i]) continue;
    check(grads[i].defined(), "backward of '", op_, "' returned no gradient for input ", i, ", which needs one");
    check(grads[i].shape() == edges_[i].shape && grads[i].dtype() == edges_[i].dtype, "backward of '", op_,
          "' returned a gradient ", grads[i].describe(), " for input ", i, " of shape ", shape_str(edges_[i].shape),
          " and dtype ", dtype_name(edges_[i].dtype));
  }
  if (t_anomaly_mode && !t_checking) check_backward_anomaly(grad_output, grads);
  return grads;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

void record(const char* op, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn) {
  check_forward_anomaly(op, output, inputs);
  if (!any_requires_grad(inputs)) return;
  std::vector<Node::Edge> edges(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    if (t.grad_fn()) {
      edges[i].producer = t.grad_fn();
    } else {
      edges[i].leaf = t.impl_ptr();
    }
    edges[i].shape = t.shape();
    edges[i].dtype = t.dtype();
  }
  output.impl().grad_fn =
      std::make_shared<Node>(op, std::move(edges), output.shape(), output.dtype(), std::move(fn));
  output.impl().requires_grad = true;
}

namespace {

Tensor sum_gradients(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  return add(a, b);
}

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& grad) {
  Tensor existing = leaf.grad ? Tensor(leaf.grad) : Tensor();
  leaf.grad = sum_gradients(existing, grad).impl_ptr();
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output, const LeafReady& on_leaf_ready) {
  check(root.defined(), "backward: root is an undefined tensor");
  check(root.requires_grad(), "backward: ", root.describe(),
        " does not require grad (no input of its computation requires grad, or it was computed under NoGradGuard)");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    check(root.numel() == 1, "backward: root ", root.describe(),
          " is not a single value; pass the gradient of the root explicitly");
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  check(seed.shape() == root.shape() && seed.dtype() == root.dtype(), "backward: gradient ", seed.describe(),
        " does not match root ", root.describe());

  NoGradGuard no_grad;
  if (!root.grad_fn()) {
    accumulate_into_leaf(root.impl(), seed);
    if (on_leaf_ready) on_leaf_ready(root.impl());
    return;
  }

  // Discover the graph and count, for each node, how many edges of reachable nodes lead to it.
  // Every reachable node is checked for release before anything runs, so a second backward fails
  // cleanly instead of half-way through.
  std::unordered_map<Node*, int> pending;
  // With on_leaf_ready: each leaf's contributions still to come.
  std::unordered_map<const TensorImpl*, int> leaf_pending;
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_set<Node*> seen{root.grad_fn().get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    check(!node->released(), "backward: the graph through '", node->op(),
          "' was already freed by an earlier backward (saved tensors are released after use)");
    for (const Node::Edge& edge : node->edges()) {
      if (on_leaf_ready && edge.leaf && edge.needs_grad()) ++leaf_pending[edge.leaf.get()];
      if (!edge.producer) continue;
      Node* next = edge.producer.get();
      ++pending[next];
      if (seen.insert(next).second) stack.push_back(next);
    }
  }

  // Kahn's algorithm: a node runs once every consumer has delivered its gradient.
  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = seed;
  std::vector<std::shared_ptr<Node>> ready{root.grad_fn()};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    auto it = grads.find(node.get());
    Tensor grad = it->second;
    grads.erase(it);
    std::vector<Tensor> input_grads = node->run(grad);
    grad = Tensor();
    const auto& edges = node->edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Node::Edge& edge = edges[i];
      if (!edge.needs_grad()) continue;
      if (edge.leaf) {
        accumulate_into_leaf(*edge.leaf, input_grads[i]);
        if (on_leaf_ready && --leaf_pending[edge.leaf.get()] == 0) on_leaf_ready(*edge.leaf);
      } else {
        Node* next = edge.producer.get();
        grads[next] = sum_gradients(grads[next], input_grads[i]);
        if (--pending[next] == 0) ready.push_back(edge.producer);
      }
      input_grads[i] = Tensor();
    }
  }
}

}  // namespace strata::autograd

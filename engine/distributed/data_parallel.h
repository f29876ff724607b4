// Data parallelism over a Communicator (PyTorch's DistributedDataParallel semantics, which MiB and
// PLOP train with): every rank holds the same model, runs forward and backward on its own shard of the
// batch, and before the optimizer step each parameter's gradient becomes the mean of the ranks'
// gradients, so every rank applies the same update and the models stay equal.
//
//   DataParallel parallel(world, model.parameters());
//   parallel.broadcast_from(0, model.parameters(), buffers);  // step start: rank 0's state everywhere
//   loss.backward();
//   parallel.average_gradients();                          // then optimizer.step()
//
// Gradients travel in buckets of about `bucket_bytes` (DDP's bucket_cap_mb, 25 MB): the gradients of
// consecutive parameters, in reverse registration order (the order backward produces them), copied
// into one flat tensor per bucket and dtype, all-reduced, scaled by 1/W and copied back. Every rank
// runs the same graph, so a parameter has a gradient on every rank or on none (a head the loss did not
// reach); one without stays without (the optimizer skips it, as PyTorch's), its place in the bucket
// summed as zeros.
//
// The buckets are reduced after backward has finished (not yet overlapped with it; DESIGN.md's
// overlap needs autograd to announce each leaf's final gradient).
#pragma once

#include <cstddef>
#include <vector>

#include "engine/distributed/communicator.h"
#include "engine/tensor.h"

namespace strata::distributed {

inline constexpr size_t kDefaultBucketBytes = size_t{25} << 20;

class DataParallel {
 public:
  DataParallel(Communicator& world, std::vector<Tensor> parameters, size_t bucket_bytes = kDefaultBucketBytes);

  Communicator& world() { return world_; }
  int buckets() const { return static_cast<int>(buckets_.size()); }

  // Every parameter's .grad() := the mean over the ranks of it.
  void average_gradients();
  // The tensors (parameters, then buffers such as batch-norm statistics) take rank `root`'s values,
  // in place.
  void broadcast_from(int root, const std::vector<Tensor>& tensors);

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into parameters_
    int64_t elements = 0;
  };

  Communicator& world_;
  std::vector<Tensor> parameters_;
  std::vector<Bucket> buckets_;
};

}  // namespace strata::distributed

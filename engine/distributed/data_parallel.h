// Data parallelism over a Communicator (PyTorch's DistributedDataParallel semantics, which MiB and
// PLOP train with): every rank holds the same model, runs forward and backward on its own shard of the
// batch, and before the optimizer step each parameter's gradient becomes the mean of the ranks'
// gradients, so every rank applies the same update and the models stay equal.
//
//   DataParallel parallel(world, model.parameters());
//   parallel.broadcast_from(0, state);                      // step start: rank 0's state everywhere
//   autograd::backward(loss, {}, parallel.on_gradient_ready());  // buckets start during backward
//   parallel.finish();                                      // then optimizer.step()
//
// Gradients travel in buckets of about `bucket_bytes` (DDP's bucket_cap_mb, 25 MB; the first one at
// most kFirstBucketBytes): consecutive
// parameters in reverse registration order (the order backward produces their gradients), one dtype
// and device per bucket. A bucket starts as soon as backward has delivered the final gradient of
// each of its parameters (autograd::backward's on_leaf_ready), buckets in index order on every rank
// (the ranks' collectives must match); finish() starts the ones left (parameters without a gradient
// this pass) and waits for all. Each bucket's gradients are copied into one flat tensor, summed over
// the ranks, scaled by 1/W and copied back.
//
// Overlap: a bucket's collective is issued from the hook, in the middle of backward, in the calling
// thread. For device parameters it is queued on the device's stream (NCCL: the host goes on at once);
// for host parameters it runs then and there, backward waiting for it. (A communication thread for
// the host buckets was measured and dropped: on 2 ranks of this 2-core machine, the thread's MPI
// busy-wait took the core from the rank's backward and loader: the demo model trained at 180 images/s
// with it, 352 without, 317 in one process.) Running NCCL on a second stream, concurrently with the
// rest of backward, is not done. average_gradients() is the whole thing after a backward without the
// hook.
//
// Every rank runs the same graph, so a parameter has a gradient on every rank or on none; one without
// stays without (the optimizer skips it, as PyTorch's), its place in the bucket summed as zeros.
//
// events() records, for tests and profiles, "bucket <k> started" / "bucket <k> done" and
// "backward done" (finish()'s start) in the order they happened during the last pass.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/distributed/communicator.h"
#include "engine/tensor.h"

namespace strata::distributed {

inline constexpr size_t kDefaultBucketBytes = size_t{25} << 20;
// The first bucket (the last layers' gradients, which backward produces first) is capped lower, as
// DDP's first_bucket_bytes_cap, so that communication starts early.
inline constexpr size_t kFirstBucketBytes = size_t{1} << 20;

class DataParallel {
 public:
  DataParallel(Communicator& world, std::vector<Tensor> parameters, size_t bucket_bytes = kDefaultBucketBytes);

  Communicator& world() { return world_; }
  int buckets() const { return static_cast<int>(buckets_.size()); }

  // The hook for autograd::backward; it starts the buckets whose gradients are final.
  std::function<void(const TensorImpl&)> on_gradient_ready();
  // After backward: runs the buckets not started yet; every gradient is then the ranks' mean.
  void finish();
  // Every parameter's .grad() := the mean over the ranks of it, all at once (no overlap).
  void average_gradients();
  // The tensors (parameters, then buffers such as batch-norm statistics) take rank `root`'s values,
  // in place.
  void broadcast_from(int root, const std::vector<Tensor>& tensors);

  const std::vector<std::string>& events() const { return events_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into parameters_
    int64_t elements = 0;
    size_t waiting = 0;  // members whose gradient is not final yet in this pass
    Tensor flat;         // host buckets: the reused flat buffer
  };

  void start_ready_buckets();
  void start(size_t bucket);
  void reduce(size_t bucket);
  void record(const std::string& event);

  Communicator& world_;
  std::vector<Tensor> parameters_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;  // parameter -> bucket
  size_t next_to_start_ = 0;
  bool host_ = true;  // the parameters live on the CPU
  std::vector<std::string> events_;
};

}  // namespace strata::distributed

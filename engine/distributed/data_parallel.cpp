#include "engine/distributed/data_parallel.h"

#include "engine/error.h"
#include "engine/ops/elementwise.h"

namespace strata::distributed {

DataParallel::DataParallel(Communicator& world, std::vector<Tensor> parameters, size_t bucket_bytes)
    : world_(world), parameters_(std::move(parameters)) {
  check(bucket_bytes > 0, "DataParallel: bucket_bytes must be > 0");
  Bucket current;
  size_t current_bytes = 0;
  for (size_t i = parameters_.size(); i-- > 0;) {
    const Tensor& p = parameters_[i];
    check(p.defined() && p.is_contiguous(), "DataParallel: parameter ", i, " is ",
          p.defined() ? p.describe() : std::string("undefined"), ", expected a defined contiguous tensor");
    // A bucket holds one dtype on one device.
    if (!current.members.empty()) {
      const Tensor& first = parameters_[current.members.front()];
      if (current_bytes + p.nbytes() > bucket_bytes || first.dtype() != p.dtype() || !(first.device() == p.device())) {
        buckets_.push_back(std::move(current));
        current = Bucket();
        current_bytes = 0;
      }
    }
    current.members.push_back(i);
    current.elements += p.numel();
    current_bytes += p.nbytes();
  }
  if (!current.members.empty()) buckets_.push_back(std::move(current));
}

void DataParallel::average_gradients() {
  const double inverse_world = 1.0 / world_.world_size();
  for (const Bucket& bucket : buckets_) {
    const Tensor& first = parameters_[bucket.members.front()];
    Tensor flat = Tensor::zeros({bucket.elements}, first.dtype(), first.device());
    int64_t offset = 0;
    for (size_t i : bucket.members) {
      const Tensor& p = parameters_[i];
      Tensor grad = p.grad();
      if (grad.defined()) flat.narrow_channels(offset, offset + p.numel()).copy_(grad.contiguous().reshape({-1}));
      offset += p.numel();
    }
    world_.all_reduce_sum(flat);
    Tensor mean = scale(flat, inverse_world);
    offset = 0;
    for (size_t i : bucket.members) {
      Tensor p = parameters_[i];
      Tensor slice = mean.narrow_channels(offset, offset + p.numel()).reshape(p.shape());
      Tensor grad = p.grad();
      if (grad.defined()) grad.copy_(slice);
      offset += p.numel();
    }
  }
}

void DataParallel::broadcast_from(int root, const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors) {
    Tensor target = t;
    if (target.is_contiguous()) {
      world_.broadcast(target, root);
    } else {
      Tensor copy = target.contiguous();
      world_.broadcast(copy, root);
      target.copy_(copy);
    }
  }
}

}  // namespace strata::distributed

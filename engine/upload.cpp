#include "engine/upload.h"

#include <memory>
#include <utility>

#include "engine/error.h"

namespace strata {

Upload::Upload(const Tensor& host, const Device& device) {
  check(host.defined(), "Upload: got an undefined tensor");
  check(host.device().is_cpu(), "Upload(", host.describe(), " to ", device.str(), "): expected a tensor on the cpu");
  if (device.is_cpu()) {
    tensor_ = host;
    return;
  }
  check(device.context != nullptr, "Upload(", host.describe(), " to ", device.str(),
        "): a CUDA device must come from open_cuda_device()");
  const Tensor source = host.contiguous();
  transfer_ = device.context->copy_from_host_on_copy_stream(source.raw_data(), source.nbytes());
  on_copy_stream_ = true;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(device, transfer_.device_ptr, transfer_.bytes);
  impl->shape = source.shape();
  impl->strides = contiguous_strides(source.shape());
  impl->dtype = source.dtype();
  tensor_ = Tensor(std::move(impl));
}

Upload::~Upload() { forget(); }

Upload::Upload(Upload&& other) noexcept
    : tensor_(std::move(other.tensor_)), transfer_(other.transfer_), on_copy_stream_(other.on_copy_stream_) {
  other.tensor_ = Tensor();
  other.on_copy_stream_ = false;
}

Upload& Upload::operator=(Upload&& other) noexcept {
  if (this != &other) {
    forget();
    tensor_ = std::move(other.tensor_);
    transfer_ = other.transfer_;
    on_copy_stream_ = other.on_copy_stream_;
    other.tensor_ = Tensor();
    other.on_copy_stream_ = false;
  }
  return *this;
}

Tensor Upload::take() {
  check(pending(), "Upload::take(): nothing to take (an empty Upload, or take() was already called)");
  if (on_copy_stream_) {
    tensor_.device().context->hand_over(transfer_);
    on_copy_stream_ = false;
  }
  return std::exchange(tensor_, Tensor());
}

void Upload::forget() {
  if (on_copy_stream_) {
    // noexcept paths: releasing an event does not call the device.
    tensor_.device().context->forget(transfer_);
    on_copy_stream_ = false;
  }
  tensor_ = Tensor();
}

}  // namespace strata

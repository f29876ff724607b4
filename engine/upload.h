// Upload: a host tensor on its way to a device over the device's copy stream, so the copy of the
// next batch overlaps the compute stream's work on the current one (engine/device_context.h).
//
//   Upload next(batch.images, device);   // returns at once; the copy is queued on the copy stream
//   ...                                  // queue this step's work on the compute stream
//   Tensor images = next.take();         // the compute stream now waits (on the device) for the copy
//
// The host tensor is read (into pinned staging memory) before the constructor returns, so it may be
// changed or freed right away. take() never blocks the host. An Upload destroyed without take()
// releases its device memory safely: only later copy-stream work can reuse it.
// For a CPU target there is nothing to copy: take() returns the host tensor itself.
//
// Errors: a host tensor that is not on the CPU, an undefined tensor, or take() on an empty or
// already taken Upload throws strata::Error naming the tensor.
#pragma once

#include "engine/device.h"
#include "engine/device_context.h"
#include "engine/tensor.h"

namespace strata {

class Upload {
 public:
  Upload() = default;
  Upload(const Tensor& host, const Device& device);
  ~Upload();
  Upload(Upload&& other) noexcept;
  Upload& operator=(Upload&& other) noexcept;
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // Whether take() may be called.
  bool pending() const { return tensor_.defined(); }
  // The tensor on the target device, ordered before every op queued on the compute stream after
  // this call. Once only.
  Tensor take();

 private:
  void forget();

  Tensor tensor_;
  DeviceContext::CopyStreamTransfer transfer_;
  bool on_copy_stream_ = false;
};

}  // namespace strata

// DevicePrefetcher: a Loader's batches, delivered on a device one batch ahead. When the caller takes
// batch k, the copy of batch k+1 is already queued on the device's copy stream (engine/upload.h),
// ahead of batch k's compute, so it travels while the compute stream works on batch k. This is
// PyTorch's `pin_memory=True` + `.to(device, non_blocking=True)`, done once for every caller.
//
//   DevicePrefetcher batches(loader, device);
//   batches.start_epoch(epoch);
//   while (std::optional<Batch> batch = batches.next()) { ... batch->images is on `device` ... }
//
// Batches are the loader's, unchanged, with images (N,H,W,3) and labels (N,H,W) u8 on `device`
// (labels stay on the host with LabelsOn::host, for evaluation, which counts them there).
// On the CPU there is nothing to copy: next() is the loader's next().
// Errors: the loader's error for a batch (a corrupt file...) is thrown by the next() call that
// would have returned that batch, as the loader itself does, even though it was read one call
// earlier; the call after it goes on with the following batch, as the loader does.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>

#include "data/loader.h"
#include "engine/device.h"
#include "engine/upload.h"

namespace strata::data {

class DevicePrefetcher {
 public:
  enum class LabelsOn { device, host };
  // `loader` must outlive the prefetcher.
  DevicePrefetcher(Loader& loader, Device device, LabelsOn labels_on = LabelsOn::device);

  // Starts the loader's epoch `epoch` at its batch `first_batch` (Loader::start_epoch, which throws
  // for a batch outside the epoch) and queues the copy of that batch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch on the device, or nullopt at the end of the epoch.
  std::optional<Batch> next();

 private:
  struct InFlight {
    Batch batch;  // host tensors replaced by the device ones in next()
    Upload images;
    Upload labels;
  };
  // Takes the loader's next batch and queues its copy (or keeps its error for the next call).
  void prefetch();

  Loader& loader_;
  Device device_;
  LabelsOn labels_on_;
  bool started_ = false;
  std::optional<InFlight> ahead_;
  std::exception_ptr ahead_error_;
};

}  // namespace strata::data

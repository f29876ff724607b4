#include "data/device_prefetcher.h"

#include <utility>

#include "engine/error.h"

namespace strata::data {

DevicePrefetcher::DevicePrefetcher(Loader& loader, Device device, LabelsOn labels_on)
    : loader_(loader), device_(std::move(device)), labels_on_(labels_on) {}

void DevicePrefetcher::start_epoch(int64_t epoch, int64_t first_batch) {
  ahead_.reset();
  ahead_error_ = nullptr;
  loader_.start_epoch(epoch, first_batch);
  started_ = true;
  if (!device_.is_cpu()) prefetch();
}

void DevicePrefetcher::prefetch() {
  try {
    std::optional<Batch> batch = loader_.next();
    if (!batch) return;
    InFlight flight;
    flight.images = Upload(batch->images, device_);
    if (labels_on_ == LabelsOn::device) flight.labels = Upload(batch->labels, device_);
    flight.batch = std::move(*batch);
    ahead_ = std::move(flight);
  } catch (...) {
    ahead_error_ = std::current_exception();
  }
}

std::optional<Batch> DevicePrefetcher::next() {
  check(started_, "DevicePrefetcher::next: call start_epoch(epoch) first");
  if (device_.is_cpu()) return loader_.next();
  if (ahead_error_) {
    std::exception_ptr error = std::exchange(ahead_error_, nullptr);
    prefetch();
    std::rethrow_exception(error);
  }
  if (!ahead_) return std::nullopt;
  InFlight current = std::move(*ahead_);
  ahead_.reset();
  // Queued before this batch's compute, the next copy overlaps it.
  prefetch();
  current.batch.images = current.images.take();
  if (current.labels.pending()) current.batch.labels = current.labels.take();
  return std::move(current.batch);
}

}  // namespace strata::data

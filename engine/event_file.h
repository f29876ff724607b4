// TensorBoard event files, written by strata itself: no TensorFlow, no protobuf library.
//
// An event file is a sequence of TFRecords, each
//   uint64 length | uint32 masked_crc32c(length) | length bytes of data | uint32 masked_crc32c(data)
// (little-endian; masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8), and each record's
// data an Event protobuf message (tensorflow/core/util/event.proto), encoded here by hand from the
// public definitions: Event{1: wall_time double, 2: step int64, 3: file_version string, 5: summary
// Summary}, Summary{1: repeated value Value}, Value{1: tag string, 2: simple_value float, 4: image
// Image}, Image{1: height int32, 2: width int32, 3: colorspace int32, 4: encoded_image_string bytes}.
// The first record is the file version "brain.Event:2"; every scalar or image is one record.
//
// EventFileWriter(folder) creates the folder and "events.out.tfevents.<seconds>.<host>.<pid>.strata"
// in it (TensorBoard reads every file whose name contains "tfevents"; the pid tells two writers of
// one second apart). add_scalar appends a record to an in-memory buffer; flush() writes the buffer
// whole with one append and flushes it, so a live TensorBoard sees every flushed value, and a kill
// at any moment leaves at most a truncated last record, which readers stop at: never a corrupt
// record in the middle. The destructor flushes, without throwing.
//
// Errors (strata::Error naming the file): the folder or the file cannot be created, a write fails
// ("disk full?" when the device has no space left); the buffer is dropped then, so a failing disk
// does not grow the memory.
#pragma once

#include <cstdint>
#include <string>

namespace strata {

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of `size` bytes, and TFRecord's mask of it.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& folder);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // A scalar summary: `tag` at `step`, the value stored as a float (TensorBoard's simple_value),
  // wall_time in seconds since the epoch (now when negative).
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  // An image summary: `encoded` a PNG (or JPEG) of height x width pixels of `channels` (1 grey, 3 RGB,
  // 4 RGBA: TensorBoard's colorspace), which TensorBoard decodes itself.
  void add_image(const std::string& tag, const std::string& encoded, int height, int width, int channels, int64_t step,
                 double wall_time = -1);
  void flush();

  const std::string& path() const { return path_; }

 private:
  void add_summary_value(const std::string& summary_value, int64_t step, double wall_time);
  void add_event(const std::string& event);

  std::string path_;
  std::string pending_;  // whole records not yet written
};

}  // namespace strata

#include "engine/event_file.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace strata {

namespace {

// The 256-entry table of the reflected CRC-32C polynomial.
std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[i] = c;
  }
  return table;
}

// Protobuf's wire format: varints, keys (field number << 3 | wire type), little-endian fixed sizes.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}

template <class T>
void put_fixed(std::string& out, T v) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86-64 and aarch64 are little-endian, as the format
  out.append(reinterpret_cast<const char*>(bytes), sizeof(T));
}

constexpr int kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event{wall_time, step} with one more field appended by the caller.
std::string event_header(double wall_time, int64_t step) {
  std::string event;
  put_key(event, 1, kFixed64);
  put_fixed(event, wall_time);
  put_key(event, 2, kVarint);
  put_varint(event, static_cast<uint64_t>(step));
  return event;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc32c_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ bytes[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventFileWriter::EventFileWriter(const std::string& folder) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  check(!error, "cannot create the TensorBoard log folder ", folder, ": ", error.message());
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const auto seconds = static_cast<long long>(now_seconds());
  path_ = (std::filesystem::path(folder) / cat("events.out.tfevents.", seconds, ".", host, ".", getpid(), ".strata"))
              .string();
  std::FILE* file = std::fopen(path_.c_str(), "ab");
  check(file != nullptr, "cannot create the TensorBoard event file ", path_, ": ", std::strerror(errno));
  std::fclose(file);
  std::string event = event_header(now_seconds(), 0);
  put_bytes(event, 3, "brain.Event:2");
  add_event(event);
  flush();
}

EventFileWriter::~EventFileWriter() {
  try {
    flush();
  } catch (const Error&) {
    // A destructor must not throw; the last flush's error was the caller's to see.
  }
}

void EventFileWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);
  put_key(summary_value, 2, kFixed32);
  put_fixed(summary_value, static_cast<float>(value));
  add_summary_value(summary_value, step, wall_time);
}

void EventFileWriter::add_image(const std::string& tag, const std::string& encoded, int height, int width, int channels,
                                int64_t step, double wall_time) {
  check(height >= 1 && width >= 1 && (channels == 1 || channels == 3 || channels == 4), "TensorBoard image '", tag,
        "': expected a size >= 1x1 and 1, 3 or 4 channels, got ", height, "x", width, "x", channels);
  std::string image;
  for (const auto& [field, number] : {std::pair{1, height}, std::pair{2, width}, std::pair{3, channels}}) {
    put_key(image, field, kVarint);
    put_varint(image, static_cast<uint64_t>(number));
  }
  put_bytes(image, 4, encoded);
  std::string summary_value;
  put_bytes(summary_value, 1, tag);
  put_bytes(summary_value, 4, image);
  add_summary_value(summary_value, step, wall_time);
}

// Event{wall_time, step, summary: Summary{value: [summary_value]}}.
void EventFileWriter::add_summary_value(const std::string& summary_value, int64_t step, double wall_time) {
  std::string summary;
  put_bytes(summary, 1, summary_value);
  std::string event = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(event, 5, summary);
  add_event(event);
}

void EventFileWriter::add_event(const std::string& event) {
  const uint64_t length = event.size();
  put_fixed(pending_, length);
  put_fixed(pending_, masked_crc32c(&length, sizeof(length)));
  pending_ += event;
  put_fixed(pending_, masked_crc32c(event.data(), event.size()));
}

void EventFileWriter::flush() {
  if (pending_.empty()) return;
  std::string records;
  records.swap(pending_);  // dropped on failure: a failing disk does not grow the memory
  std::FILE* file = std::fopen(path_.c_str(), "ab");
  check(file != nullptr, "cannot open the TensorBoard event file ", path_, ": ", std::strerror(errno));
  const size_t written = std::fwrite(records.data(), 1, records.size(), file);
  const int flushed = std::fflush(file);
  const int error = errno;
  std::fclose(file);
  check(written == records.size() && flushed == 0, "cannot write the TensorBoard event file ", path_, ": ",
        std::strerror(error), error == ENOSPC ? " (disk full?)" : "");
}

}  // namespace strata

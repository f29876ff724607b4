// TensorBoard event files (engine/event_file.h): CRC-32C against its published check values, and
// files read back by the tensorboard package's own reader (tools/read_tensorboard_events.py): the
// file version, every scalar's tag, step, value and wall time; a file cut at any byte still reads
// up to the cut, an image decodes; a folder that cannot be made and an image of no known colour space
// are errors naming them.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/event_file.h"
#include "tests/data/temp_dir.h"
#include "tests/support/torch_reference.h"

using namespace strata;

namespace {

// The reader's lines for `path` (its exit status must be 0).
std::vector<std::string> read_back(const std::string& path) {
  const std::string command = cat("'", test::python_executable(), "' '", test::source_dir(),
                                  "/tools/read_tensorboard_events.py' '", path, "' 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  INFO(output);
  REQUIRE(::pclose(pipe) == 0);
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A 3x2 RGB PNG (written by PIL).
const std::string kPng3x2(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02"
    "\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x15\x49\x44\x41\x54\x78\x9c\x63\x3c\xc1\x25\xc7\xc0\xc0\xc0\xc0"
    "\xc0\xc0\xc4\x00\x03\x00\x11\xc6\x00\xf4\x84\xe1\x1a\x01\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    78);

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("crc32c gives the published check values", "[cpu]") {
  CHECK(crc32c("123456789", 9) == 0xe3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8a9136aau);  // RFC 3720, B.4
  CHECK(crc32c(ones.data(), ones.size()) == 0x62a8ab43u);
  CHECK(crc32c("", 0) == 0u);
}

TEST_CASE("event files read back with TensorBoard's reader: version, tags, steps, values, wall times", "[torch]") {
  test::TempDir dir("event_file");
  std::string path;
  {
    EventFileWriter writer(dir / "logs/15-5-voc/run");
    path = writer.path();
    CHECK(std::filesystem::path(path).filename().string().find("tfevents") != std::string::npos);
    writer.add_scalar("Loss/1", 0.25, 10, 1700000000.5);
    writer.add_scalar("Loss-unkd/1", -3.125, 10, 1700000000.5);
    writer.add_scalar("Val_MeanIoU/1", 0.1, 5000000000LL, 1700000001.25);
    writer.flush();
    // Flushed values are on disk while the writer lives: a live TensorBoard sees them.
    CHECK(read_back(path).size() == 5);
    writer.add_scalar("T_MeanIoU/1", 0.5, 1, 1700000002.0);
    writer.add_image("Sample_0/1", kPng3x2, 2, 3, 3, 7, 1700000003.0);
  }  // the destructor flushes the rest
  const std::vector<std::string> lines = read_back(path);
  const std::vector<std::string> expected = {
      "version brain.Event:2",
      "scalar 10 Loss/1 0.25 1700000000.5",
      "scalar 10 Loss-unkd/1 -3.125 1700000000.5",
      // Stored as a float, as TensorBoard's simple_value.
      cat("scalar 5000000000 Val_MeanIoU/1 ", "0.10000000149011612", " 1700000001.25"),
      "scalar 1 T_MeanIoU/1 0.5 1700000002.0",
      "image 7 Sample_0/1 2 3 3x2 RGB",
      "records 6",
  };
  CHECK(lines == expected);

  // Cut anywhere: the reader stops at the cut, with every record before it intact.
  const std::string bytes = file_bytes(path);
  for (size_t cut : {bytes.size() - 1, bytes.size() - 5, bytes.size() / 2, size_t{13}}) {
    INFO("cut at byte " << cut << " of " << bytes.size());
    const std::string cut_path = dir / cat("cut_", cut, ".tfevents");
    std::ofstream(cut_path, std::ios::binary) << bytes.substr(0, cut);
    const std::vector<std::string> partial = read_back(cut_path);
    REQUIRE_FALSE(partial.empty());
    const size_t records = partial.size() - 1;
    CHECK(partial.back() == cat("records ", records));
    CHECK(records < 6);
    for (size_t i = 0; i < records; ++i) CHECK(partial[i] == expected[i]);
  }
}

TEST_CASE("an event file folder that cannot be made is an error naming it", "[cpu]") {
  test::TempDir dir("event_file_errors");
  std::ofstream(dir / "plain_file") << "x";
  CHECK_THROWS_WITH(EventFileWriter(dir / "plain_file/logs"),
                    Catch::Contains("cannot create the TensorBoard log folder") && Catch::Contains("plain_file/logs"));
  EventFileWriter writer(dir / "logs");
  CHECK_THROWS_WITH(writer.add_image("Sample_0/0", kPng3x2, 2, 3, 2, 0),
                    Catch::Contains("TensorBoard image 'Sample_0/0'") && Catch::Contains("1, 3 or 4 channels"));
}

// safetensors: round trips in every dtype, PyTorch layout conversion, interoperability with the
// official Python implementation in both directions, and rejection of corrupt or lying files.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/json.h"
#include "engine/safetensors.h"
#include "tests/support/torch_reference.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("strata_safetensors_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with the given header text and data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

}  // namespace

TEST_CASE("safetensors round trip in every dtype with metadata", "[cpu]") {
  fs::path path = temp_dir() / "roundtrip.safetensors";
  Generator g(1);
  TensorMap tensors{{"a.f32", Tensor::randn({2, 3}, g)},
                    {"b.f64", Tensor::randn({5}, g, DType::f64)},
                    {"c.bf16", Tensor::randn({4}, g).to(DType::bf16)},
                    {"d.f16", Tensor::randn({3, 1}, g).to(DType::f16)},
                    {"e.u8", Tensor::from_vector<uint8_t>({0, 7, 255}, {3})},
                    {"f.i32", Tensor::from_vector<int32_t>({-5, 9}, {2})},
                    {"g.i64", Tensor::from_vector<int64_t>({1LL << 40}, {1})},
                    {"h.scalar", Tensor::scalar(3.5)},
                    {"i.empty", Tensor::zeros({0, 4})}};
  save_safetensors(path, tensors, {{"step", "3"}, {"task", "15-5"}});
  SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata == Metadata{{"step", "3"}, {"task", "15-5"}});
  REQUIRE(file.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    const Tensor& back = file.tensors.at(name);
    CHECK(back.dtype() == t.dtype());
    CHECK(back.shape() == t.shape());
    CHECK(std::string(static_cast<const char*>(back.raw_data()), back.nbytes()) ==
          std::string(static_cast<const char*>(t.raw_data()), t.nbytes()));
  }
  CHECK(std::none_of(fs::directory_iterator(path.parent_path()), fs::directory_iterator(),
                     [](const fs::directory_entry& e) { return e.path().string().find(".tmp.") != std::string::npos; }));
}

TEST_CASE("safetensors stores rank-4 tensors in PyTorch's NCHW/OIHW layout", "[cpu]") {
  fs::path path = temp_dir() / "layout.safetensors";
  Tensor nhwc = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {1, 2, 2, 3});
  save_safetensors(path, {{"x", nhwc}});
  Tensor stored = load_safetensors(path, Layout::as_stored).tensors.at("x");
  CHECK(stored.shape() == Shape{1, 3, 2, 2});
  CHECK(stored.to_vector<float>() == std::vector<float>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
  CHECK(load_safetensors(path).tensors.at("x").to_vector<float>() == nhwc.to_vector<float>());
}

TEST_CASE("safetensors written by the official Python library load, and ours load there", "[torch]") {
  // Python -> strata: the interop case written with safetensors.torch.save_file.
  test::TorchCase c("safetensors_interop", "from_python");
  CHECK(c["f32"].to_vector<float>() == std::vector<float>{1.5f, -2.0f, 3.25f});
  CHECK(c["i64"].to_vector<int64_t>() == std::vector<int64_t>{-1, 1LL << 33});
  CHECK(c["u8"].to_vector<uint8_t>() == std::vector<uint8_t>{0, 128, 255});
  CHECK(c["bf16"].dtype() == DType::bf16);
  CHECK(c["bf16"].to(DType::f32).to_vector<float>() == std::vector<float>{1.0f, -0.5f});
  CHECK(c["conv"].shape() == Shape{2, 1, 1, 3});  // OIHW (2,3,1,1) on disk
  CHECK(c.text("written_by") == "safetensors.torch");

  // strata -> Python: write a file and let the Python side check every value.
  fs::path path = temp_dir() / "from_strata.safetensors";
  save_safetensors(path, {{"f32", Tensor::from_vector<float>({1.5f, -2.0f}, {2})},
                          {"i32", Tensor::from_vector<int32_t>({7, -8}, {2})},
                          {"f16", Tensor::from_vector<float>({0.5f}, {1}).to(DType::f16)},
                          {"conv", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 1, 1, 3})}},
                   {{"written_by", "strata"}});
  std::string command =
      test::python_executable() + " " + test::source_dir() + "/tools/check_safetensors_from_strata.py " + path.string();
  CHECK(std::system(command.c_str()) == 0);
}

TEST_CASE("safetensors rejects truncated, lying and malformed files naming the problem", "[cpu]") {
  fs::path dir = temp_dir();
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& fragment) {
    fs::path path = dir / (name + ".safetensors");
    write_bytes(path, bytes);
    INFO(name);
    CHECK_THROWS_WITH(load_safetensors(path), Catch::Contains(path.string()) && Catch::Contains(fragment));
  };
  const std::string four_floats(16, '\0');
  expect_error("short", "abc", "too short");
  std::string past_end = make_file("{}", "");
  past_end[1] = 0x10;  // claims a 4098-byte header in a 10-byte file
  expect_error("header_past_end", past_end, "runs past the end");
  expect_error("not_json", make_file("{\"a\": ", ""), "invalid header JSON");
  expect_error("not_object", make_file("[1, 2]", ""), "not a JSON object");
  expect_error("bad_dtype", make_file(R"({"a":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}})", four_floats),
               "dtype C64");
  expect_error("size_mismatch", make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", four_floats),
               "needs 12 bytes");
  expect_error("truncated_data", make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678"),
               "runs past");
  expect_error("overlap",
               make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         four_floats),
               "overlap or hole");
  expect_error("trailing_bytes", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four_floats),
               "cover 8 of 16");
  expect_error("missing_field", make_file(R"({"a":{"dtype":"F32","shape":[2]}})", four_floats), "data_offsets");
  expect_error("negative_shape", make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", four_floats),
               "invalid shape");
  CHECK_THROWS_WITH(load_safetensors((dir / "does_not_exist.safetensors").string()), Catch::Contains("cannot open"));
}

// Found by fuzzing (tests/fuzz, fuzz_safetensors): the element count was multiplied in int64 without a bound, so
// [2^32, 2^32] wrapped to 0 elements and loaded as a tensor claiming 2^64 of them.
TEST_CASE("safetensors rejects a shape whose element count overflows, and keeps empty tensors", "[cpu]") {
  fs::path dir = temp_dir();
  auto load = [&](const std::string& name, const std::string& header) {
    fs::path path = dir / (name + ".safetensors");
    write_bytes(path, make_file(header, ""));
    return load_safetensors(path.string());
  };
  CHECK_THROWS_WITH(load("square", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                    Catch::Contains("tensor 'w' f32[4294967296,4294967296] has more elements than any file holds"));
  CHECK_THROWS_WITH(load("zero_last", R"({"w":{"dtype":"U8","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})"),
                    Catch::Contains("has more elements than any file holds"));
  CHECK_THROWS_WITH(load("bytes", R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
                    Catch::Contains("has more elements than any file holds"));
  SafetensorsFile empty = load("empty", R"({"w":{"dtype":"F32","shape":[0,1000000],"data_offsets":[0,0]}})");
  CHECK(empty.tensors.at("w").shape() == Shape{0, 1000000});
  CHECK(empty.tensors.at("w").numel() == 0);
}

TEST_CASE("json parses, rejects and writes documents exactly", "[cpu]") {
  json::Value v = json::parse(R"( {"a": [1, -2.5e3, true, null, "x\"\u00e9\ud83d\ude00"], "big": 9007199254740993} )");
  CHECK(v.at("a").as_array()[0].as_int() == 1);
  CHECK(v.at("a").as_array()[1].as_double() == -2500.0);
  CHECK(v.at("a").as_array()[2].as_bool());
  CHECK(v.at("a").as_array()[3].is_null());
  CHECK(v.at("a").as_array()[4].as_string() == "x\"\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.at("big").as_int() == 9007199254740993LL);  // beyond double precision, kept exactly
  // A double stays a double when written (-2500.0, not the integer -2500).
  CHECK(json::dump(v) == R"({"a":[1,-2500.0,true,null,"x\")"
                         "\xc3\xa9\xf0\x9f\x98\x80"
                         R"("],"big":9007199254740993})");
  CHECK(json::parse(json::dump(v)).at("a").as_array()[1].is_number());
  CHECK_FALSE(json::parse(json::dump(v)).at("a").as_array()[1].is_int());
  // Errors name the byte (after the token that failed) and what was expected.
  CHECK_THROWS_WITH(json::parse("{\"a\" 1}"), Catch::Contains("json: at byte 6") && Catch::Contains("expected ':'"));
  CHECK_THROWS_WITH(json::parse("[1,]"), Catch::Contains("unexpected ']'"));
  CHECK_THROWS_WITH(json::parse("{} x"), Catch::Contains("expected end of input"));
  CHECK_THROWS_WITH(json::parse(std::string(100, '[')), Catch::Contains("less nesting"));
  CHECK_THROWS_WITH(json::parse(std::string(65, '[') + std::string(65, ']')), Catch::Contains("less nesting"));
  CHECK(json::parse(std::string(64, '[') + std::string(64, ']')).is_array());
  CHECK_THROWS_WITH(json::parse("\"\xff\""), Catch::Contains("ill-formed UTF-8"));
  CHECK_THROWS_WITH(json::parse("1e400"), Catch::Contains("number overflow"));
  // Beyond int64, an integer is a double; ill-formed UTF-8 is written as U+FFFD.
  CHECK(json::parse("18446744073709551616").as_double() == 18446744073709551616.0);
  CHECK(json::dump(json::Value(std::string("a\xffz"))) == "\"a\xef\xbf\xbdz\"");
  CHECK_THROWS_WITH(v.at("missing"), Catch::Contains("missing key \"missing\""));
}

// Found by fuzz_json (its dump-parse-dump round trip): -0.0 was written as "-0", which reads back
// as the integer 0.
TEST_CASE("json writes negative zero so that it reads back as negative zero", "[cpu]") {
  const std::string text = json::dump(json::Value(json::Array{json::Value(-0.0), json::Value(0.0)}));
  CHECK(text == "[-0.0,0.0]");
  const json::Array back = json::parse(text).as_array();
  CHECK(!back[0].is_int());
  CHECK(std::signbit(back[0].as_double()));
  CHECK(json::dump(json::parse(text)) == text);
}

TEST_CASE("json writes non-finite numbers as the strings nan, inf and -inf, and reads them back", "[cpu]") {
  const json::Value v(json::Array{json::Value(std::nan("")), json::Value(HUGE_VAL), json::Value(-HUGE_VAL), 0.5});
  const std::string text = json::dump(v);
  CHECK(text == R"(["nan","inf","-inf",0.5])");
  const json::Value back = json::parse(text);
  CHECK(std::isnan(back.as_array()[0].as_double()));
  CHECK(back.as_array()[1].as_double() == HUGE_VAL);
  CHECK(back.as_array()[2].as_double() == -HUGE_VAL);
  CHECK(back.as_array()[3].as_double() == 0.5);
  CHECK(back.as_array()[0].as_string() == "nan");  // still a string to a reader that asks for one
  CHECK_THROWS_WITH(json::Value("infinite").as_double(), Catch::Contains("expected a number"));
}

#include "engine/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <vector>

#include "engine/json.h"

namespace strata {

namespace {

// Largest header we accept: the reference implementation's limit.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::u8: return "U8";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  return "?";
}

bool parse_dtype(const std::string& name, DType& out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::f32}, {"F64", DType::f64},
                                                        {"BF16", DType::bf16}, {"F16", DType::f16},
                                                        {"U8", DType::u8}, {"I32", DType::i32},
                                                        {"I64", DType::i64}};
  for (const auto& [n, d] : table) {
    if (name == n) {
      out = d;
      return true;
    }
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "safetensors: cannot open '", path, "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(!in.bad(), "safetensors: error reading '", path, "'");
  return bytes;
}

// The bytes a tensor of `shape` and `dtype` holds, or nothing when its dimensions multiply past
// what an int64 byte count holds. Zero dimensions are skipped in that bound because Tensor
// multiplies every dimension in order: [2^40, 2^40, 0] would overflow there before reaching 0.
std::optional<uint64_t> tensor_bytes(const Shape& shape, DType dtype) {
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dtype_size(dtype);
  uint64_t product = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d == 0) {
      empty = true;
    } else if (static_cast<uint64_t>(d) > limit / product) {
      return std::nullopt;
    } else {
      product *= static_cast<uint64_t>(d);
    }
  }
  return empty ? 0 : product * dtype_size(dtype);
}

uint64_t read_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path, Layout layout) {
  return parse_safetensors(read_file(path), path, layout);
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& file_name, Layout layout) {
  auto fail = [&](const std::string& what) -> Error { return Error(cat("safetensors '", file_name, "': ", what)); };
  if (bytes.size() < 8) throw fail(cat("file is ", bytes.size(), " bytes, too short for the 8-byte header length"));
  uint64_t header_len = read_le64(bytes.data());
  if (header_len > kMaxHeaderBytes) throw fail(cat("header length ", header_len, " exceeds the limit"));
  if (header_len > bytes.size() - 8) {
    throw fail(cat("header length ", header_len, " runs past the end of the ", bytes.size(), "-byte file (truncated?)"));
  }
  std::string_view header(bytes.data() + 8, header_len);
  if (header.empty() || header.front() != '{') throw fail("header is not a JSON object");
  json::Value root;
  try {
    root = json::parse(header);
  } catch (const Error& e) {
    throw fail(cat("invalid header JSON (", e.what(), ")"));
  }
  if (!root.is_object()) throw fail("header is not a JSON object");
  const char* data = bytes.data() + 8 + header_len;
  uint64_t data_len = bytes.size() - 8 - header_len;

  SafetensorsFile file;
  struct Extent {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Extent> extents;
  for (const auto& [name, entry] : root.as_object()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.as_object()) {
        if (!v.is_string()) throw fail(cat("__metadata__ value for '", k, "' is not a string"));
        file.metadata[k] = v.as_string();
      }
      continue;
    }
    if (file.tensors.count(name)) throw fail(cat("tensor '", name, "' appears twice"));
    if (!entry.is_object()) throw fail(cat("entry '", name, "' is not an object"));
    const json::Value* dtype_v = entry.find("dtype");
    const json::Value* shape_v = entry.find("shape");
    const json::Value* offsets_v = entry.find("data_offsets");
    if (!dtype_v || !dtype_v->is_string() || !shape_v || !shape_v->is_array() || !offsets_v || !offsets_v->is_array()) {
      throw fail(cat("entry '", name, "' needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)"));
    }
    DType dtype;
    if (!parse_dtype(dtype_v->as_string(), dtype)) {
      throw fail(cat("tensor '", name, "' has dtype ", dtype_v->as_string(),
                     "; strata reads F32, F64, BF16, F16, U8, I32, I64"));
    }
    Shape shape;
    for (const json::Value& d : shape_v->as_array()) {
      if (!d.is_int() || d.as_int() < 0) throw fail(cat("tensor '", name, "' has an invalid shape entry"));
      shape.push_back(d.as_int());
    }
    const json::Array& offsets = offsets_v->as_array();
    if (offsets.size() != 2 || !offsets[0].is_int() || !offsets[1].is_int() || offsets[0].as_int() < 0 ||
        offsets[1].as_int() < offsets[0].as_int()) {
      throw fail(cat("tensor '", name, "' has invalid data_offsets"));
    }
    uint64_t begin = static_cast<uint64_t>(offsets[0].as_int()), end = static_cast<uint64_t>(offsets[1].as_int());
    const std::optional<uint64_t> bytes_needed = tensor_bytes(shape, dtype);
    if (!bytes_needed) {
      throw fail(
          cat("tensor '", name, "' ", dtype_name(dtype), shape_str(shape), " has more elements than any file holds"));
    }
    const uint64_t expected = *bytes_needed;
    if (end - begin != expected) {
      throw fail(cat("tensor '", name, "' ", dtype_name(dtype), shape_str(shape), " needs ", expected,
                     " bytes but data_offsets span ", end - begin));
    }
    if (end > data_len) {
      throw fail(cat("tensor '", name, "' data [", begin, ", ", end, ") runs past the ", data_len,
                     " data bytes (truncated?)"));
    }
    Tensor t = Tensor::empty(shape, dtype);
    if (expected) std::memcpy(t.raw_data(), data + begin, expected);
    if (layout == Layout::torch && t.dim() == 4) t = nchw_to_nhwc(t);
    file.tensors.emplace(name, std::move(t));
    extents.push_back({begin, end, name});
  }
  // The data must be covered exactly once, in order, without holes (as the reference reader checks).
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Extent& e : extents) {
    if (e.begin != covered) {
      throw fail(cat("tensor '", e.name, "' starts at byte ", e.begin, " but the previous data ends at ", covered,
                     " (overlap or hole)"));
    }
    covered = e.end;
  }
  if (covered != data_len) throw fail(cat("tensors cover ", covered, " of ", data_len, " data bytes"));
  return file;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata, Layout layout) {
  json::Object header;
  if (!metadata.empty()) {
    json::Object meta;
    for (const auto& [k, v] : metadata) meta.emplace_back(k, json::Value(v));
    header.emplace_back("__metadata__", json::Value(std::move(meta)));
  }
  std::vector<Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    check(tensor.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
    Tensor t = tensor.device().is_cpu() ? tensor.detach() : tensor.to(Device::cpu()).detach();
    t = (layout == Layout::torch && t.dim() == 4) ? nhwc_to_nchw(t) : t.contiguous();
    json::Array shape;
    for (int64_t d : t.shape()) shape.emplace_back(d);
    uint64_t size = t.nbytes();
    json::Object entry{{"dtype", json::Value(safetensors_dtype(t.dtype()))},
                       {"shape", json::Value(std::move(shape))},
                       {"data_offsets", json::Value(json::Array{json::Value(offset), json::Value(offset + size)})}};
    header.emplace_back(name, json::Value(std::move(entry)));
    offset += size;
    ordered.push_back(std::move(t));
  }
  std::string header_text = json::dump(json::Value(std::move(header)));
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::string bytes;
  bytes.reserve(8 + header_text.size() + offset);
  uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xFF);
  bytes += header_text;
  for (const Tensor& t : ordered) bytes.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  write_file_atomically(path, bytes);
}

}  // namespace strata

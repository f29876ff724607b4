// safetensors files (https://github.com/huggingface/safetensors, format documented in its README):
//   8 bytes  little-endian u64 N = header length
//   N bytes  JSON object: name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//            plus an optional "__metadata__": {string: string}
//   rest     the tensors' bytes, little-endian, row-major, offsets relative to the end of the header
//
// Files on disk use PyTorch's layouts so they interoperate with PyTorch: with Layout::torch (the
// default), rank-4 tensors are NCHW/OIHW in the file and NHWC/OHWI in memory, converted on load
// and on save. Layout::as_stored keeps every tensor exactly as in the file.
//
// Loading validates everything (header length, JSON, dtypes, shapes, offsets covering the data
// exactly once, no duplicates) and throws strata::Error naming the file and the first problem, so
// a truncated or lying file never yields a tensor. Saving goes through write_file_atomically
// (engine/atomic_file.h, included here for every writer of results and checkpoints): a temporary
// file next to the destination, flushed and renamed, so a crash never leaves a half-written file
// under the real name.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "engine/atomic_file.h"
#include "engine/tensor.h"

namespace strata {

enum class Layout { torch, as_stored };

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  TensorMap tensors;
  Metadata metadata;
};

SafetensorsFile load_safetensors(const std::string& path, Layout layout = Layout::torch);
// The same from the file's bytes in memory; `file_name` names them in error messages.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& file_name, Layout layout = Layout::torch);
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {},
                      Layout layout = Layout::torch);

}  // namespace strata

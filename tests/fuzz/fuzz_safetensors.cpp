// Fuzz target: the safetensors reader (engine/safetensors.h) on a file's bytes, as checkpoints
// and converted weights are loaded. An accepted file's tensors cover its data bytes exactly.
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string bytes = fuzz::bytes_of(data, size);
  fuzz::refuse_clearly([&] {
    const SafetensorsFile file = parse_safetensors(bytes, "fuzz.safetensors");
    size_t tensor_bytes = 0;
    for (const auto& [name, tensor] : file.tensors) tensor_bytes += tensor.nbytes();
    fuzz::expect(tensor_bytes <= bytes.size(), "the tensors hold no more bytes than the file");
  });
  return 0;
}

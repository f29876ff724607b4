// Fuzz target: the JSON reader (engine/json.h), which reads safetensors headers, checkpoint
// metadata, label-index caches and logs. An accepted document must also survive the writer:
// dump() gives text parse() accepts and that dumps to the same text again.
#include "engine/json.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string text = fuzz::bytes_of(data, size);
  fuzz::refuse_clearly([&] {
    const json::Value value = json::parse(text);
    const std::string written = json::dump(value);
    json::Value reread;
    try {
      reread = json::parse(written);
    } catch (const Error&) {
      fuzz::expect(false, "parse(dump(v)) accepts what dump wrote");
    }
    fuzz::expect(json::dump(reread) == written, "dump(parse(dump(v))) == dump(v)");
  });
  return 0;
}

// Fuzz target: `strata train`'s command line (incremental/options.h). The input is split into
// arguments at newlines and NULs and parsed with every option allowed, then with the allow-list
// of a per-setting binary.
#include <vector>

#include "incremental/options.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  std::vector<std::string> args(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n' || data[i] == '\0') {
      args.emplace_back();
    } else {
      args.back() += static_cast<char>(data[i]);
    }
  }
  fuzz::refuse_clearly([&] {
    incremental::TrainOptions options;
    incremental::parse_train_options(args, options);
  });
  fuzz::refuse_clearly([&] {
    incremental::TrainOptions options;
    incremental::parse_train_options(args, options, {"--data-root", "--output", "--device", "--seed"});
  });
  return 0;
}

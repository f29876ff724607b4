#include "tests/support/torch_reference.h"

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>

#include "tests/support/compare.h"

namespace strata::test {

std::string torch_reference_dir() {
  if (const char* env = std::getenv("STRATA_TORCHREF_DIR")) return env;
  return STRATA_TORCHREF_DIR;
}

std::string python_executable() { return STRATA_PYTHON; }

std::string source_dir() { return STRATA_SOURCE_DIR; }

TorchCase::TorchCase(const std::string& group, const std::string& name)
    : path_(torch_reference_dir() + "/" + group + "/" + name + ".safetensors") {
  check(std::filesystem::exists(path_), "PyTorch reference '", path_,
        "' is missing: the ctest fixture torch_references writes it (run ctest, or tools/torch_reference.py ",
        torch_reference_dir(), ")");
  file_ = load_safetensors(path_);
}

const Tensor& TorchCase::operator[](const std::string& key) const {
  auto it = file_.tensors.find(key);
  check(it != file_.tensors.end(), "PyTorch reference '", path_, "' has no tensor '", key, "'");
  return it->second;
}

double TorchCase::param(const std::string& key) const { return std::stod(text(key)); }

const std::string& TorchCase::text(const std::string& key) const {
  auto it = file_.metadata.find(key);
  check(it != file_.metadata.end(), "PyTorch reference '", path_, "' has no parameter '", key, "'");
  return it->second;
}

void check_torch_case(const std::string& group, const std::string& name, const std::vector<std::string>& inputs,
                      const TorchCaseFn& f) {
  TorchCase c(group, name);
  INFO("PyTorch reference " << c.path());
  std::vector<Tensor> args;
  for (const std::string& input : inputs) {
    Tensor t = c[input].clone();
    if (c.has("grad." + input)) t.set_requires_grad(true);
    args.push_back(t);
  }
  Tensor y = f(args, c);
  CHECK_CLOSE(y, c["out"]);
  if (!c.has("grad_out")) return;
  y.backward(c["grad_out"]);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!c.has("grad." + inputs[i])) continue;
    INFO("gradient of " << inputs[i]);
    CHECK_CLOSE(args[i].grad(), c["grad." + inputs[i]]);
  }
}

}  // namespace strata::test

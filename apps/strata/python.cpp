#include "apps/strata/python.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/error.h"

namespace strata::app {

std::string default_python() {
  if (const char* env = std::getenv("STRATA_PYTHON")) return env;
  std::filesystem::path venv = std::filesystem::path(STRATA_SOURCE_DIR) / "build" / "venv" / "bin" / "python";
  return std::filesystem::exists(venv) ? venv.string() : "/usr/bin/python3";
}

json::Value run_python_json(const std::string& python, const std::string& script, const json::Value& input,
                            const std::vector<std::string>& extra_args) {
  std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("strata_bench_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(file);
    out << json::dump(input);
    check(out.good(), "cannot write ", file.string());
  }
  std::string command = "'" + python + "' '" + std::string(STRATA_SOURCE_DIR) + "/" + script + "' '" + file.string() + "'";
  for (const std::string& a : extra_args) command += " '" + a + "'";
  command += " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  check(pipe != nullptr, "cannot run ", command);
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  std::filesystem::remove(file);
  check(status == 0, "the PyTorch side failed (", command, "):\n", output);
  size_t end = output.find_last_not_of("\n");
  size_t start = output.rfind('\n', end);
  std::string last = output.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
  try {
    return json::parse(last);
  } catch (const Error& e) {
    throw Error(cat("the PyTorch side printed no JSON result (", e.what(), "):\n", output));
  }
}

}  // namespace strata::app

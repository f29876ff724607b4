// Running the PyTorch side of a benchmark: a Python script from tools/ that reads a JSON document
// and prints one JSON document on its last line of output.
#pragma once

#include <string>
#include <vector>

#include "engine/json.h"

namespace strata::app {

// The interpreter with torch (the venv the README set-up creates, else /usr/bin/python3); the
// STRATA_PYTHON environment variable overrides it.
std::string default_python();

// Writes `input` to a temporary JSON file, runs `python <source>/<script> <file> <extra...>`, and
// parses the last line of its standard output. Throws with the command and its output on failure.
json::Value run_python_json(const std::string& python, const std::string& script, const json::Value& input,
                            const std::vector<std::string>& extra_args);

}  // namespace strata::app

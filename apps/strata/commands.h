// The strata command-line tool: one function per subcommand, each taking the arguments after the
// subcommand name and returning the process exit code. Commands throw strata::Error on bad input;
// main() prints it and exits non-zero.
#pragma once

#include <string>
#include <vector>

namespace strata::app {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

// Every subcommand, in the order `strata --help` lists them (defined in main.cpp).
const std::vector<Command>& commands();

int run_demo(const Args& args);          // demo.cpp
int run_train(const Args& args);         // train.cpp
int run_compare(const Args& args);       // compare.cpp
int run_eval(const Args& args);          // eval.cpp
int run_make_dataset(const Args& args);  // make_dataset.cpp
int run_profile(const Args& args);       // profile.cpp
int run_report(const Args& args);        // report.cpp
int run_invert(const Args& args);        // invert.cpp
int run_bench(const Args& args);  // bench.cpp: `strata bench <what>` dispatches to a Benchmark

// `strata bench <name>`: each benchmark registers here (defined in bench.cpp).
struct Benchmark {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};
const std::vector<Benchmark>& benchmarks();

}  // namespace strata::app

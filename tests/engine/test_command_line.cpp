// CommandLine (engine/command_line.h): CLI11 reads the arguments, strata's words report what is wrong.
// Options apply in the order given, values are taken whatever they look like, --help stops
// everything, and every error names the option (and the command) it is about.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/command_line.h"
#include "engine/error.h"

using strata::CommandLine;

namespace {

// A command with one option of each kind, recording what was applied in order.
struct Recorder {
  std::vector<std::string> applied;
  int64_t batch = 0;
  double lr = 0;
  uint64_t seed = 0;
  bool verbose = false;
  CommandLine command_line;

  explicit Recorder(const std::string& command = "") : command_line(command) {
    command_line.value("--task", "NAME", [this](const std::string& v) { applied.push_back("task=" + v); });
    command_line.flag("--overlap", [this] { applied.push_back("overlap"); });
    command_line.integer("--batch", "N", batch, 1);
    command_line.real("--lr", "LR", lr);
    command_line.integer("--seed", "N", seed);
    command_line.flag("--verbose", verbose);
  }
};

}  // namespace

TEST_CASE("command line: options apply in the order given, values whatever they look like", "[cpu]") {
  Recorder r;
  REQUIRE(r.command_line.parse({"--task", "15-5", "--overlap", "--task=10-1", "--batch", "8", "--lr", "-0.5",
                                "--seed=7", "--verbose", "--overlap", "--task", "--overlap"}));
  CHECK(r.applied == std::vector<std::string>{"task=15-5", "overlap", "task=10-1", "overlap", "task=--overlap"});
  CHECK(r.batch == 8);
  CHECK(r.lr == -0.5);
  CHECK(r.seed == 7);
  CHECK(r.verbose);
  Recorder none;
  REQUIRE(none.command_line.parse({}));
  CHECK(none.applied.empty());
}

TEST_CASE("command line: --help and -h apply nothing, whatever else is given", "[cpu]") {
  for (const std::string help : {"--help", "-h"}) {
    Recorder r;
    CHECK_FALSE(r.command_line.parse({"--task", "a", help, "--bogus", "--batch"}));
    CHECK(r.applied.empty());
    CHECK(strata::wants_help({"x", help}));
  }
  CHECK_FALSE(strata::wants_help({"--task", "a"}));
}

TEST_CASE("command line: bad arguments are errors naming the option and the command", "[cpu]") {
  auto refused = [](const std::vector<std::string>& args, const std::string& message) {
    Recorder r("bench gpu");
    INFO(message);
    CHECK_THROWS_WITH(r.command_line.parse(args), Catch::StartsWith("bench gpu: ") && Catch::Contains(message));
  };
  refused({"--tasks", "15-5"}, "unknown option '--tasks' (see --help)");
  refused({"--task", "a", "stray"}, "unexpected argument 'stray'");
  refused({"-x"}, "unknown option '-x'");
  refused({"--task"}, "option --task needs a value (NAME)");
  refused({"--overlap", "--batch"}, "option --batch needs a value (N)");
  refused({"--task="}, "option --task needs a value");
  refused({"--task", ""}, "option --task needs a value (NAME)");
  refused({"--overlap=yes"}, "option --overlap takes no value, got '--overlap=yes'");
  refused({"--batch", "twelve"}, "--batch expects an integer, got 'twelve'");
  refused({"--batch", "8x"}, "--batch expects an integer, got '8x'");
  refused({"--batch", "0"}, "--batch must be >= 1, got 0");
  refused({"--batch", "99999999999999999999"}, "--batch expects an integer");
  refused({"--seed", "-3"}, "--seed must be >= 0, got -3");
  refused({"--lr", "fast"}, "--lr expects a number, got 'fast'");
  refused({"--lr", "nan"}, "--lr expects a number, got 'nan'");
  // Without a command name, no prefix.
  Recorder plain;
  CHECK_THROWS_WITH(plain.command_line.parse({"--bogus"}), "unknown option '--bogus' (see --help)");
}

TEST_CASE("command line: an option's own error is reported with the command's name", "[cpu]") {
  CommandLine command_line("make-dataset");
  command_line.value("--layout", "NAME",
                     [](const std::string& v) { strata::check(v == "voc", "--layout expects voc, got '", v, "'"); });
  CHECK_THROWS_WITH(command_line.parse({"--layout", "coco"}), "make-dataset: --layout expects voc, got 'coco'");
  int threads = 0;
  CommandLine counts("demo");
  counts.integer("--workers", "N", threads, 1);
  CHECK_THROWS_WITH(counts.parse({"--workers", "2147483648"}), "demo: --workers is out of range: 2147483648");
}

TEST_CASE("command line: positional arguments, where a command takes them", "[cpu]") {
  std::vector<std::string> runs;
  std::string output;
  CommandLine command_line("report");
  command_line.positionals("RUN_DIR", runs);
  command_line.text("--output", "FILE", output);
  REQUIRE(command_line.parse({"runs/a", "--output", "r.html", "runs/b"}));
  CHECK(runs == std::vector<std::string>{"runs/a", "runs/b"});
  CHECK(output == "r.html");
  std::vector<std::string> more;
  CommandLine again("report");
  again.positionals("RUN_DIR", more);
  CHECK_THROWS_WITH(again.parse({"runs/a", "--bogus"}), "report: unknown option '--bogus' (see --help)");
}

TEST_CASE("command line: comma lists and numbers from text", "[cpu]") {
  CHECK(strata::split_commas("8,24") == std::vector<std::string>{"8", "24"});
  CHECK(strata::split_commas("8,") == std::vector<std::string>{"8", ""});
  CHECK(strata::split_commas("").empty());
  CHECK(strata::parse_integer("--n", "-12") == -12);
  CHECK(strata::parse_real("--w", "1e-3") == 1e-3);
  CHECK(strata::int_at_least("--n", "3", 3) == 3);
  CHECK_THROWS_WITH(strata::integer_at_least("--n", "2", 3), "--n must be >= 3, got 2");
}

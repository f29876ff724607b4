// The options of a command, parsed by CLI11 (Debian's libcli11-dev): every strata command and the
// per-setting binaries declare their options here and print their own --help text (the text users
// read, grouped and worded as the references'), while CLI11 does the tokenising.
//
//   CommandLine options("bench gpu");
//   options.integer("--batch", "N", batch, 1);
//   options.text("--python", "EXE", python);
//   options.flag("--no-torch", [&] { torch = false; });
//   if (!options.parse(args)) { print_help(); return 0; }
//
// `--name VALUE` and `--name=VALUE` both work; the argument after an option that takes a value is
// its value, whatever it looks like (`--name --ckpt` names a run "--ckpt", `--lr -1` is minus one),
// so a command line reads one way only. An option given twice is applied twice, and the
// options apply in the order they are given (the last of `--overlap --protocol disjoint` wins),
// each as soon as it is read. --help and -h are the commands' own: parse returns false when either
// is among the arguments, and applies nothing.
//
// Errors (strata::Error, prefixed with "<command>: " when the command is named): an unknown
// option or an unexpected argument, naming it ("unknown option '--tasks' (see --help)"); an option
// without its value, naming both ("option --task needs a value (NAME)"; an empty value counts as
// none); a flag given a value; a malformed number naming the option and the text ("--batch-size
// expects an integer, got 'twelve'"); a number below its minimum naming the range ("--batch-size
// must be >= 1, got 0": 0 is never a silent default on the command line); and whatever an option's
// own function throws.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace strata {

class CommandLine {
 public:
  explicit CommandLine(std::string command = "");
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // An option with a value (`argument` names it in errors, "N", "DIR"); `apply` gets the value.
  void value(const std::string& name, const std::string& argument, std::function<void(const std::string&)> apply);
  // An option without a value.
  void flag(const std::string& name, std::function<void()> apply);

  // Shorthands storing into `target`: the text; an integer >= `min`; a real number (finite).
  void text(const std::string& name, const std::string& argument, std::string& target);
  void integer(const std::string& name, const std::string& argument, int& target, int min);
  void integer(const std::string& name, const std::string& argument, int64_t& target, int64_t min);
  void integer(const std::string& name, const std::string& argument, uint64_t& target);
  void real(const std::string& name, const std::string& argument, double& target);
  void flag(const std::string& name, bool& target);  // sets target to true
  // The arguments that are not options (`strata report RUN_DIR...`), in order; without this, any
  // such argument is an error.
  void positionals(const std::string& argument, std::vector<std::string>& target);

  // Applies `args` (the arguments after the command's name). Returns false, applying nothing, when
  // --help or -h is among them.
  bool parse(const std::vector<std::string>& args);

 private:
  struct Parser;
  std::string command_;
  std::unique_ptr<Parser> parser_;
};

// True when --help or -h is among `args`.
bool wants_help(const std::vector<std::string>& args);

// Text to numbers for option values, the errors naming `option` (as CommandLine's shorthands).
int64_t parse_integer(const std::string& option, const std::string& text);
double parse_real(const std::string& option, const std::string& text);  // finite
int64_t integer_at_least(const std::string& option, const std::string& text, int64_t min);
int int_at_least(const std::string& option, const std::string& text, int min);

// "8,24" -> {"8", "24"} (a trailing comma gives an empty last item; "" gives none).
std::vector<std::string> split_commas(const std::string& text);

}  // namespace strata

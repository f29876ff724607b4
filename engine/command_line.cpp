#include "engine/command_line.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "engine/error.h"

namespace strata {

// CLI11 reads the arguments; the options' functions run as each one is read (trigger_on_parse), so
// they apply in command-line order. Unknown arguments are collected (allow_extras) rather than
// refused by CLI11, so that the error can name the first of them in strata's words.
struct CommandLine::Parser {
  CLI::App app;
  std::set<std::string> flags;   // for "--flag=value", refused before CLI11 reads it
  std::set<std::string> values;  // for a value missing at the end, named before CLI11 reads it
};

CommandLine::CommandLine(std::string command) : command_(std::move(command)), parser_(std::make_unique<Parser>()) {
  parser_->app.set_help_flag();  // --help is the command's own text
  parser_->app.allow_extras(true);
}

CommandLine::~CommandLine() = default;

void CommandLine::value(const std::string& name, const std::string& argument,
                        std::function<void(const std::string&)> apply) {
  // The next argument is the value, whatever it looks like (`--name --ckpt` names a run "--ckpt"), so
  // that a command line reads one way only; an empty value counts as none.
  parser_->values.insert(name);
  parser_->app
      .add_option_function<std::vector<std::string>>(
          name,
          [name, argument, apply = std::move(apply)](const std::vector<std::string>& values) {
            check(!values.empty() && !values.back().empty(), "option ", name, " needs a value (", argument, ")");
            apply(values.back());
          })
      ->type_name(argument)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->trigger_on_parse();
}

void CommandLine::flag(const std::string& name, std::function<void()> apply) {
  parser_->app.add_flag_callback(name, std::move(apply))->trigger_on_parse()->disable_flag_override();
  parser_->flags.insert(name);
}

void CommandLine::text(const std::string& name, const std::string& argument, std::string& target) {
  value(name, argument, [&target](const std::string& v) { target = v; });
}

void CommandLine::integer(const std::string& name, const std::string& argument, int& target, int min) {
  value(name, argument, [&target, name, min](const std::string& v) { target = int_at_least(name, v, min); });
}

void CommandLine::integer(const std::string& name, const std::string& argument, int64_t& target, int64_t min) {
  value(name, argument, [&target, name, min](const std::string& v) { target = integer_at_least(name, v, min); });
}

void CommandLine::integer(const std::string& name, const std::string& argument, uint64_t& target) {
  value(name, argument,
        [&target, name](const std::string& v) { target = static_cast<uint64_t>(integer_at_least(name, v, 0)); });
}

void CommandLine::real(const std::string& name, const std::string& argument, double& target) {
  value(name, argument, [&target, name](const std::string& v) { target = parse_real(name, v); });
}

void CommandLine::flag(const std::string& name, bool& target) {
  flag(name, [&target] { target = true; });
}

void CommandLine::positionals(const std::string& argument, std::vector<std::string>& target) {
  parser_->app.add_option(argument, target)->type_name(argument);
}

bool CommandLine::parse(const std::vector<std::string>& args) {
  if (wants_help(args)) return false;
  const std::string prefix = command_.empty() ? "" : command_ + ": ";
  try {
    // What CLI11 would refuse in its own words: a flag given a value, a value missing at the end.
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      const size_t equals = a.find('=');
      const std::string name = a.substr(0, equals);
      if (equals != std::string::npos) {
        check(!parser_->flags.count(name), "option ", name, " takes no value, got '", a, "'");
        check(equals + 1 < a.size() || !parser_->values.count(name), "option ", name, " needs a value");
      } else if (parser_->values.count(a)) {
        check(i + 1 < args.size(), "option ", a, " needs a value (", parser_->app.get_option(a)->get_type_name(), ")");
        ++i;  // its value, whatever it looks like
      }
    }
    // CLI11 reads a vector of arguments from its back.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    parser_->app.parse(reversed);
    const std::vector<std::string> extra = parser_->app.remaining();
    if (!extra.empty()) {
      const std::string& first = extra.front();
      check(first.empty() || first[0] != '-', "unknown option '", first, "' (see --help)");
      throw Error(cat("unexpected argument '", first, "' (see --help)"));
    }
  } catch (const CLI::ParseError& e) {
    throw Error(cat(prefix, e.what(), " (see --help)"));
  } catch (const Error& e) {
    if (prefix.empty()) throw;
    throw Error(cat(prefix, e.what()));
  }
  return true;
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

int64_t parse_integer(const std::string& option, const std::string& text) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == text.size() && !text.empty(), option, " expects an integer, got '", text, "'");
  return value;
}

double parse_real(const std::string& option, const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == text.size() && !text.empty() && std::isfinite(value), option, " expects a number, got '", text, "'");
  return value;
}

int64_t integer_at_least(const std::string& option, const std::string& text, int64_t min) {
  const int64_t value = parse_integer(option, text);
  check(value >= min, option, " must be >= ", min, ", got ", text);
  return value;
}

int int_at_least(const std::string& option, const std::string& text, int min) {
  const int64_t value = integer_at_least(option, text, min);
  check(value <= std::numeric_limits<int>::max(), option, " is out of range: ", text);
  return static_cast<int>(value);
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  if (!text.empty() && text.back() == ',') out.push_back("");
  return out;
}

}  // namespace strata

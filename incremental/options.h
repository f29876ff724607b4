// The options of `strata train`, as one table: each option's name, its argument, its help text and
// how it sets TrainOptions (incremental/trainer.h). MiB's run.py options with dashes (SPEC §8.1):
// --dataset, --data-root, --task, --step, --method, --overlap, --epochs, --batch-size, --crop-size,
// --lr, --backbone, --output-stride, --loss-kd, --loss-de, --unce, --unkd, --init-balanced,
// --alpha, --icarl, --icarl-importance, --icarl-disjoint, --icarl-bkg, --reg-importance, --reg-alpha,
// --reg-iterations, --reg-no-normalize, --ckpt, --step-ckpt, --test,
// --seed (MiB's --random_seed), --workers, --name, --val-interval, --ckpt-interval, plus strata's
// (--convention, --head, --device, --output, ...).
//
// A per-setting binary starts from a preset TrainOptions and parses a few of these as overrides:
// parse_train_options(args, options, {"--data-root", "--output", "--device"}) accepts only those
// (and --help), train_options_help(the same list) documents only those.
//
// The options are read by CLI11 through engine/command_line.h (`--name VALUE` or `--name=VALUE`,
// applied in the order given), which also gives the errors (strata::Error): an unknown option
// (naming it; with an allow-list, an option outside it), a missing value, a malformed number naming
// the option and the text, a count or size out of its range naming the option and the range
// (`--batch-size 0`: "--batch-size must be >= 1, got 0"; 0 is never a silent default on the command
// line).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/command_line.h"
#include "engine/interrupt.h"
#include "incremental/trainer.h"

namespace strata::incremental {

struct OptionSpec {
  const char* name;      // "--task"
  const char* argument;  // "NAME", or nullptr for a flag
  const char* help;
  std::function<void(TrainOptions&, const std::string&)> apply;  // flags get ""
};

const std::vector<OptionSpec>& train_option_specs();

// Declares the train options named in `names` (with dashes; empty: every one) on `command_line`
// (engine/command_line.h), each setting `options` (which must outlive the parse).
void add_train_options(CommandLine& command_line, TrainOptions& options, const std::vector<std::string>& names = {});
// Declares every other train option than `accepted` as refused, naming it: "option --lr is not
// accepted here: <why>" (empty why: "... here (see --help)").
void refuse_train_options(CommandLine& command_line, const std::vector<std::string>& accepted, const std::string& why);

// Applies `args` to `options` (CommandLine's syntax and errors, with the train options only). Returns
// false when --help (or -h) was given (nothing else is checked then). `allowed` (names with dashes)
// restricts the options accepted, the others refused as above; empty: all.
bool parse_train_options(const std::vector<std::string>& args, TrainOptions& options,
                         const std::vector<std::string>& allowed = {});

// The groups `--help` prints the options in, each titled by what it configures and, for a method's
// flags, the method and the reference code the flags come from. Every option is in exactly one group
// (a test checks it; train_options_help throws naming an option that is not).
struct OptionGroup {
  const char* title;
  std::vector<std::string> names;
  bool changes_method = false;  // its options are MethodOverrides (--method itself is not)
};
const std::vector<OptionGroup>& train_option_groups();
// The options that change a method preset term by term (the groups with changes_method), for tools
// that take a method without the rest of train's options (strata profile).
std::vector<std::string> method_option_names();

// The options' help text by group (a title line, then two columns, wrapped). Restricted to
// `allowed` when not empty: then only those options, in the groups' order, without titles.
std::string train_options_help(const std::vector<std::string>& allowed = {});

// The command that picks up a run of `program args` (parsed options `options`) stopped by
// `interrupted` (engine/interrupt.h), one line per instruction: the same command with --step set to
// the interrupted step and --ckpt to its checkpoint (when one was written), and for a run of every
// step (up to `last_step`), that the later steps follow with --step N; or, when nothing was written
// and no earlier step of this run was trained, to run the command again. Arguments are quoted for a
// POSIX shell where needed.
std::string resume_hint(const std::string& program, const std::vector<std::string>& args, const TrainOptions& options,
                        const Interrupted& interrupted, int last_step);

}  // namespace strata::incremental

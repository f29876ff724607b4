// Protocols (SPEC-continual.md §2 and strata's choices table): which images each step trains,
// validates and tests on, and how their raw labels become the channel targets of that step.
//
// Image filters, from the label index (U(x) = the raw labels present in image x, C_t = the classes
// of step t without 0, C_<=t = the classes of steps 0..t), exactly as the references'
// filter_images:
//   training, overlapped   keep x iff U(x) ∩ C_t ≠ ∅
//   training, disjoint     keep x iff U(x) ∩ C_t ≠ ∅ and U(x) ⊆ C_<=t ∪ {0, 255}
//   validation (§2.4)      keep x iff U(x) ∩ C_t ≠ ∅ (the overlap filter whatever the protocol)
//   test (§2.5)            keep x iff U(x) ∩ (C_<=t \ {0}) ≠ ∅ (overlap filter over every seen class)
// Images the label index marks bad (a label that failed to read, left out under skip_bad) are never
// kept. Returned indices are ascending dataset sample indices (the loader's LoaderOptions::subset).
//
// Label tables: 256-entry lookup tables from a raw label value to the step's target (a channel, or
// 255 = ignored), for LoaderOptions::label_map. `Convention` selects, together, the reference whose
// choices strata reproduces (choices table): plop (default) or mib. At step t, for a raw label l:
//
//   training (§2.3)                     plop                     mib
//     l ∈ C_t                           channel of l             channel of l
//     0, old (C_<t), future (C_>t)      0                        0
//     255 (VOC void)                    255 (ignored)            0 (background: MiB's quirk)
//   validation (§2.4)
//     l ∈ C_t                           channel of l             channel of l
//     0                                 0                        VOC: 0; ADE20K: 255 (raw 0 is "other")
//     old and future classes            0                        255
//     255                               255                      255
//   test (§2.5)
//     l seen (0..t)                     channel of l             channel of l, but ADE20K raw 0 -> 255
//     unseen (future)                   0 (background)           255 (ignored)
//     255                               255                      255
// ADE20K raw 0 at test: plop counts it as class 0 (151-class mean), mib ignores it (150-class mean).
// Values outside the label space (never produced by a dataset, which validates its labels) map to
// 255. MiB's ADE validation also sends raw 0 to 255: its masking keeps only the step's classes.
//
// Errors: a step outside the task (strata::Error naming the task and its steps). The label index must
// be the one of the dataset the images are loaded from: indices refer to its sample order.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "data/label_index.h"
#include "incremental/task.h"

namespace strata::incremental {

enum class Protocol { disjoint, overlapped };
enum class Convention { plop, mib };

const char* protocol_name(Protocol protocol);        // "disjoint", "overlapped"
const char* convention_name(Convention convention);  // "plop", "mib"
// "disjoint" | "overlapped" (also "overlap", "ov"); "plop" | "mib". Anything else throws listing them.
Protocol parse_protocol(const std::string& text);
Convention parse_convention(const std::string& text);

// ---- image filters ------------------------------------------------------------------------------

// The training filter for one image's label set (`present` as in data::LabelIndex, 255 included).
bool keep_for_training(const std::bitset<256>& present, const Task& task, int step, Protocol protocol);
bool keep_for_validation(const std::bitset<256>& present, const Task& task, int step);
bool keep_for_test(const std::bitset<256>& present, const Task& task, int step);

std::vector<int64_t> training_images(const data::LabelIndex& index, const Task& task, int step, Protocol protocol);
std::vector<int64_t> validation_images(const data::LabelIndex& index, const Task& task, int step);
std::vector<int64_t> test_images(const data::LabelIndex& index, const Task& task, int step);

// Training images per step (what a run prints at its start, §2.2's step-size table).
std::vector<int64_t> training_step_sizes(const data::LabelIndex& index, const Task& task, Protocol protocol);

// ---- label tables -------------------------------------------------------------------------------

using LabelTable = std::array<uint8_t, 256>;

LabelTable training_label_table(const Task& task, int step, Convention convention);
LabelTable validation_label_table(const Task& task, int step, Convention convention);
LabelTable test_label_table(const Task& task, int step, Convention convention);

}  // namespace strata::incremental

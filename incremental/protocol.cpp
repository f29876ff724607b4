#include "incremental/protocol.h"

#include "engine/error.h"

namespace strata::incremental {

namespace {

constexpr uint8_t kIgnore = 255;

// Labels present in the image that are step classes (without 0) of steps in [first_step, last_step].
bool has_class_of_steps(const std::bitset<256>& present, const Task& task, int first_step, int last_step) {
  for (int s = first_step; s <= last_step; ++s) {
    for (int c : task.classes(s)) {
      if (c != 0 && present.test(static_cast<size_t>(c))) return true;
    }
  }
  return false;
}

template <class Keep>
std::vector<int64_t> filter(const data::LabelIndex& index, Keep keep) {
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < index.size(); ++i) {
    if (!index.bad(i) && keep(index.present(i))) kept.push_back(i);
  }
  return kept;
}

bool is_ade(const Task& task) { return task.labels().kind == data::DatasetKind::ade20k; }

// Every entry `fill`, then the step's channels for the given raw labels.
LabelTable table_with(uint8_t fill, const Task& task, int step, const std::vector<int>& mapped) {
  LabelTable table;
  table.fill(kIgnore);
  for (int v = 0; v < task.labels().num_classes(); ++v) table[static_cast<size_t>(v)] = fill;
  for (int raw : mapped) table[static_cast<size_t>(raw)] = static_cast<uint8_t>(task.channel_of(step, raw));
  return table;
}

}  // namespace

const char* protocol_name(Protocol protocol) { return protocol == Protocol::disjoint ? "disjoint" : "overlapped"; }
const char* convention_name(Convention convention) { return convention == Convention::plop ? "plop" : "mib"; }

Protocol parse_protocol(const std::string& text) {
  if (text == "disjoint") return Protocol::disjoint;
  if (text == "overlapped" || text == "overlap" || text == "ov") return Protocol::overlapped;
  throw Error(cat("unknown protocol '", text, "'; expected disjoint or overlapped"));
}

Convention parse_convention(const std::string& text) {
  if (text == "plop") return Convention::plop;
  if (text == "mib") return Convention::mib;
  throw Error(cat("unknown convention '", text, "'; expected plop (the default) or mib"));
}

bool keep_for_training(const std::bitset<256>& present, const Task& task, int step, Protocol protocol) {
  task.check_step(step);
  if (!has_class_of_steps(present, task, step, step)) return false;
  if (protocol == Protocol::overlapped) return true;
  for (size_t v = 0; v < present.size(); ++v) {
    if (!present.test(v) || v == 0 || v == 255) continue;
    int s = static_cast<int>(v) < task.labels().num_classes() ? task.step_of(static_cast<int>(v)) : -1;
    if (s < 0 || s > step) return false;  // a future (or never learned) class
  }
  return true;
}

bool keep_for_validation(const std::bitset<256>& present, const Task& task, int step) {
  task.check_step(step);
  return has_class_of_steps(present, task, step, step);
}

bool keep_for_test(const std::bitset<256>& present, const Task& task, int step) {
  task.check_step(step);
  return has_class_of_steps(present, task, 0, step);
}

std::vector<int64_t> training_images(const data::LabelIndex& index, const Task& task, int step, Protocol protocol) {
  task.check_step(step);
  return filter(index, [&](const std::bitset<256>& p) { return keep_for_training(p, task, step, protocol); });
}

std::vector<int64_t> validation_images(const data::LabelIndex& index, const Task& task, int step) {
  task.check_step(step);
  return filter(index, [&](const std::bitset<256>& p) { return keep_for_validation(p, task, step); });
}

std::vector<int64_t> test_images(const data::LabelIndex& index, const Task& task, int step) {
  task.check_step(step);
  return filter(index, [&](const std::bitset<256>& p) { return keep_for_test(p, task, step); });
}

std::vector<int64_t> training_step_sizes(const data::LabelIndex& index, const Task& task, Protocol protocol) {
  std::vector<int64_t> sizes;
  for (int s = 0; s < task.num_steps(); ++s) {
    sizes.push_back(static_cast<int64_t>(training_images(index, task, s, protocol).size()));
  }
  return sizes;
}

LabelTable training_label_table(const Task& task, int step, Convention convention) {
  LabelTable table = table_with(0, task, step, task.classes(step));
  // VOC void: PLOP ignores it; MiB's inverted_order[255] is the training masking value, background.
  table[255] = convention == Convention::plop ? kIgnore : 0;
  return table;
}

LabelTable validation_label_table(const Task& task, int step, Convention convention) {
  if (convention == Convention::plop) {
    LabelTable table = table_with(0, task, step, task.classes(step));
    table[255] = kIgnore;
    return table;
  }
  LabelTable table = table_with(kIgnore, task, step, task.classes(step));
  // MiB keeps VOC's background at 0; its ADE masking keeps only the step's classes, so raw 0 -> 255.
  table[0] = is_ade(task) ? kIgnore : 0;
  return table;
}

LabelTable test_label_table(const Task& task, int step, Convention convention) {
  LabelTable table = table_with(convention == Convention::plop ? 0 : kIgnore, task, step, task.channel_order(step));
  if (convention == Convention::mib && is_ade(task)) table[0] = kIgnore;
  table[255] = kIgnore;
  return table;
}

}  // namespace strata::incremental

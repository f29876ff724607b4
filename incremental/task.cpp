#include "incremental/task.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>

#include "engine/error.h"

namespace strata::incremental {

namespace {

using Steps = std::vector<std::vector<int>>;

// ---- reference tables (SPEC-continual.md §1.3-1.5) ------------------------------------------------

// VOC 15-1 random class orders (PLOP tasks.py, §1.4): step 0 (incl. 0), then one class per step.
const std::map<std::string, Steps>& voc_random_orders() {
  static const std::map<std::string, Steps> orders = {
      {"15-5s_b", {{0, 12, 9, 20, 7, 15, 8, 14, 16, 5, 19, 4, 1, 13, 2, 11}, {17}, {3}, {6}, {18}, {10}}},
      {"15-5s_c", {{0, 13, 19, 15, 17, 9, 8, 5, 20, 4, 3, 10, 11, 18, 16, 7}, {12}, {14}, {6}, {1}, {2}}},
      {"15-5s_d", {{0, 15, 3, 2, 12, 14, 18, 20, 16, 11, 1, 19, 8, 10, 7, 17}, {6}, {5}, {13}, {9}, {4}}},
      {"15-5s_e", {{0, 7, 5, 3, 9, 13, 12, 14, 19, 10, 2, 1, 4, 16, 8, 17}, {15}, {18}, {6}, {11}, {20}}},
      {"15-5s_f", {{0, 7, 13, 5, 11, 9, 2, 15, 12, 14, 3, 20, 1, 16, 4, 18}, {8}, {6}, {10}, {19}, {17}}},
      {"15-5s_g", {{0, 7, 5, 9, 1, 15, 18, 14, 3, 20, 10, 4, 19, 11, 17, 16}, {12}, {8}, {6}, {2}, {13}}},
      {"15-5s_h", {{0, 12, 9, 19, 6, 4, 10, 5, 18, 14, 15, 16, 3, 8, 7, 11}, {13}, {2}, {20}, {17}, {1}}},
      {"15-5s_i", {{0, 13, 10, 15, 8, 7, 19, 4, 3, 16, 12, 14, 11, 5, 20, 6}, {2}, {18}, {9}, {17}, {1}}},
      {"15-5s_j", {{0, 1, 14, 9, 5, 2, 15, 8, 20, 6, 16, 18, 7, 11, 10, 19}, {3}, {4}, {17}, {12}, {13}}},
      {"15-5s_k", {{0, 16, 13, 1, 11, 12, 18, 6, 14, 5, 3, 7, 9, 20, 19, 15}, {4}, {2}, {10}, {8}, {17}}},
      {"15-5s_l", {{0, 10, 7, 6, 19, 16, 8, 17, 1, 14, 4, 9, 3, 15, 11, 12}, {2}, {18}, {20}, {13}, {5}}},
      {"15-5s_m", {{0, 18, 4, 14, 17, 12, 10, 7, 3, 9, 1, 8, 15, 6, 13, 2}, {5}, {11}, {20}, {16}, {19}}},
      {"15-5s_n", {{0, 5, 4, 13, 18, 14, 10, 19, 15, 7, 9, 3, 2, 8, 16, 20}, {1}, {12}, {11}, {6}, {17}}},
      {"15-5s_o", {{0, 9, 12, 13, 18, 7, 1, 15, 17, 10, 8, 4, 5, 20, 16, 6}, {14}, {19}, {11}, {2}, {3}}},
      {"15-5s_p", {{0, 9, 12, 13, 18, 2, 11, 15, 17, 10, 8, 4, 5, 20, 16, 6}, {14}, {19}, {1}, {7}, {3}}},
      {"15-5s_q", {{0, 3, 14, 13, 18, 2, 11, 15, 17, 10, 8, 4, 5, 20, 16, 6}, {12}, {19}, {1}, {7}, {9}}},
      {"15-5s_r", {{0, 3, 14, 13, 1, 2, 11, 15, 17, 7, 8, 4, 5, 9, 16, 19}, {12}, {6}, {18}, {10}, {20}}},
      {"15-5s_s", {{0, 3, 14, 6, 1, 2, 11, 12, 17, 7, 20, 4, 5, 9, 16, 19}, {15}, {13}, {18}, {10}, {8}}},
      {"15-5s_t", {{0, 3, 15, 13, 1, 2, 11, 18, 17, 7, 20, 8, 5, 9, 16, 19}, {14}, {6}, {12}, {10}, {4}}},
      {"15-5s_u", {{0, 3, 15, 13, 14, 6, 11, 18, 17, 7, 20, 8, 4, 9, 16, 10}, {1}, {2}, {12}, {19}, {5}}},
      {"15-5s_v", {{0, 1, 2, 12, 14, 6, 19, 18, 17, 5, 20, 8, 4, 9, 16, 10}, {3}, {15}, {13}, {11}, {7}}},
      {"15-5s_w", {{0, 1, 2, 12, 14, 13, 19, 18, 7, 11, 20, 8, 4, 9, 16, 10}, {3}, {15}, {6}, {5}, {17}}},
  };
  return orders;
}

// ADE20K orders B and C (MiB tasks.py, §1.5): raw ids in the listed (channel) order.
const std::vector<int> kAde100_50bBase = {
      0, 1, 3, 5, 6, 8, 9, 10, 12, 13, 14, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 31, 32, 33, 34, 36,
      38, 39, 40, 42, 43, 44, 45, 46, 47, 48, 49, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 69, 70, 71, 74,
      75, 76, 77, 80, 81, 82, 84, 86, 87, 90, 91, 93, 95, 96, 99, 100, 101, 103, 104, 105, 106, 107, 109,
      113, 116, 117, 119, 120, 121, 123, 125, 126, 128, 129, 130, 131, 132, 133, 134, 135, 136, 140, 142,
      143, 144, 147, 148, 149, 150};
const std::vector<int> kAde100_50bNew = {
      2, 4, 7, 11, 15, 16, 17, 20, 30, 35, 37, 41, 50, 51, 52, 59, 64, 65, 66, 67, 68, 72, 73, 78, 79, 83,
      85, 88, 89, 92, 94, 97, 98, 102, 108, 110, 111, 112, 114, 115, 118, 122, 124, 127, 137, 138, 139,
      141, 145, 146};
const std::vector<int> kAde100_50cBase = {
      0, 1, 5, 6, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 20, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
      34, 35, 36, 37, 40, 41, 43, 44, 45, 46, 48, 50, 52, 54, 56, 57, 61, 63, 65, 66, 67, 68, 69, 70, 71,
      74, 76, 77, 78, 79, 81, 82, 83, 84, 85, 86, 87, 90, 94, 95, 96, 97, 98, 99, 102, 105, 106, 109, 110,
      111, 112, 114, 115, 118, 119, 120, 121, 123, 124, 126, 128, 129, 132, 133, 134, 135, 136, 138, 139,
      142, 143, 144, 146, 147, 149};
const std::vector<int> kAde100_50cNew = {
      2, 3, 4, 7, 15, 18, 21, 22, 38, 39, 42, 47, 49, 51, 53, 55, 58, 59, 60, 62, 64, 72, 73, 75, 80, 88,
      89, 91, 92, 93, 100, 101, 103, 104, 107, 108, 113, 116, 117, 122, 125, 127, 130, 131, 137, 140, 141,
      145, 148, 150};
const std::vector<int> kAde50bBase = {
      0, 1, 9, 14, 18, 22, 24, 25, 27, 28, 29, 32, 38, 42, 45, 46, 47, 48, 49, 54, 56, 58, 61, 62, 63, 69,
      74, 75, 76, 77, 81, 82, 84, 90, 93, 96, 100, 103, 104, 109, 117, 119, 121, 123, 128, 129, 130, 134,
      135, 136, 144};
const std::vector<int> kAde50bMiddle = {
      3, 5, 6, 8, 10, 12, 13, 19, 21, 23, 26, 31, 33, 34, 36, 39, 40, 43, 44, 53, 55, 57, 60, 70, 71, 80,
      86, 87, 91, 95, 99, 101, 105, 106, 107, 113, 116, 120, 125, 126, 131, 132, 133, 140, 142, 143, 147,
      148, 149, 150};
const std::vector<int> kAde50cBase = {
      0, 5, 10, 11, 12, 13, 16, 17, 19, 20, 23, 27, 28, 30, 31, 32, 33, 37, 43, 46, 52, 56, 57, 65, 66,
      69, 70, 74, 76, 77, 79, 82, 83, 86, 87, 105, 109, 110, 111, 119, 128, 129, 132, 133, 134, 138, 142,
      143, 144, 146, 147};
const std::vector<int> kAde50cMiddle = {
      1, 6, 8, 9, 14, 24, 25, 26, 29, 34, 35, 36, 40, 41, 44, 45, 48, 50, 54, 61, 63, 67, 68, 71, 78, 81,
      84, 85, 90, 94, 95, 96, 97, 98, 99, 102, 106, 112, 114, 115, 118, 120, 121, 123, 124, 126, 135, 136,
      139, 149};
const std::vector<std::vector<int>> kAde100_10bSteps = {
    {11, 16, 50, 64, 66, 73, 89, 92, 145, 146},
    {30, 37, 51, 52, 72, 85, 98, 114, 115, 138},
    {2, 35, 65, 97, 110, 111, 112, 118, 124, 141},
    {4, 7, 15, 41, 67, 78, 79, 88, 108, 139},
    {17, 20, 59, 68, 83, 94, 102, 122, 127, 137},
};
const std::vector<std::vector<int>> kAde100_10cSteps = {
    {3, 4, 7, 18, 39, 64, 73, 101, 113, 137},
    {47, 51, 55, 60, 62, 80, 116, 127, 140, 148},
    {22, 42, 49, 58, 59, 89, 91, 92, 108, 125},
    {2, 38, 53, 100, 104, 117, 130, 131, 141, 145},
    {15, 21, 72, 75, 88, 93, 103, 107, 122, 150},
};

std::vector<int> range_inclusive(int first, int last) {
  std::vector<int> out;
  for (int c = first; c <= last; ++c) out.push_back(c);
  return out;
}

bool is_reference_voc(const LabelSpace& labels) {
  return labels.kind == data::DatasetKind::voc && labels.num_classes() == 21;
}
bool is_reference_ade(const LabelSpace& labels) {
  return labels.kind == data::DatasetKind::ade20k && labels.num_classes() == 151;
}
bool is_reference_coco(const LabelSpace& labels) {
  return labels.kind == data::DatasetKind::coco && labels.num_classes() == 81;
}

const char* kind_name(data::DatasetKind kind) { return data::dataset_kind_name(kind); }

std::string space_str(const LabelSpace& labels) {
  return cat(kind_name(labels.kind), " (labels 0..", labels.num_classes() - 1, ")");
}

// "0..15 | 16 | 17": runs of consecutive ids written as ranges.
std::string steps_str(const Steps& steps) {
  std::ostringstream out;
  for (size_t s = 0; s < steps.size(); ++s) {
    if (s > 0) out << " | ";
    const std::vector<int>& step = steps[s];
    for (size_t i = 0; i < step.size();) {
      size_t j = i;
      while (j + 1 < step.size() && step[j + 1] == step[j] + 1) ++j;
      if (i > 0) out << ",";
      out << step[i];
      if (j > i) out << ".." << step[j];
      i = j + 1;
    }
  }
  return out.str();
}

// "A-B[-C...]" as numbers, or nullopt when `text` is not of that form.
std::optional<std::vector<int>> parse_split(const std::string& text) {
  std::vector<int> parts;
  size_t begin = 0;
  while (true) {
    size_t end = text.find('-', begin);
    std::string part = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    if (part.empty() || part.size() > 6 || !std::all_of(part.begin(), part.end(), digit)) return std::nullopt;
    parts.push_back(std::stoi(part));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return parts;
}

// Step 0 = 0..A, then steps of the listed sizes, the last size repeated until every class is used.
Steps split_steps(const std::string& name, const std::vector<int>& parts, const LabelSpace& labels) {
  const int last_class = labels.num_classes() - 1;
  check(parts[0] >= 1, "task '", name, "': step 0 must learn at least one class besides background (got ", parts[0],
        ")");
  check(parts[0] <= last_class, "task '", name, "': step 0 = classes 0..", parts[0], " but ", space_str(labels),
        " has classes 0..", last_class);
  Steps steps = {range_inclusive(0, parts[0])};
  std::vector<int> sizes(parts.begin() + 1, parts.end());
  const size_t written_sizes = sizes.size();  // these must all be used; the last one then repeats
  if (sizes.empty()) sizes.push_back(parts[0]);  // "50" is ADE's 50-50
  int next = parts[0] + 1;
  std::string written = std::to_string(parts[0]);  // the split with every size written out, for messages
  for (size_t i = 0; next <= last_class || i < written_sizes; ++i) {
    int size = sizes[std::min(i, sizes.size() - 1)];
    check(size >= 1, "task '", name, "': a step must learn at least one class (got a step of 0)");
    if (i >= written_sizes && next + size - 1 > last_class) {
      throw Error(cat("task '", name, "': the classes left after ", written, " (", next, "..", last_class,
                      ") do not fill a step of ", size, "; write every step size out, e.g. ", written, "-",
                      last_class - next + 1));
    }
    check(next + size - 1 <= last_class, "task '", name, "': step ", i + 1, " of ", size,
          " classes would need classes up to ", next + size - 1, ", but ", space_str(labels), " has classes 0..",
          last_class);
    steps.push_back(range_inclusive(next, next + size - 1));
    written += cat("-", size);
    next += size;
  }
  return steps;
}

bool looks_like_class_lists(const std::string& text) {
  return text.find('/') != std::string::npos || text.find(',') != std::string::npos ||
         text.find("..") != std::string::npos;
}

int parse_class_id(const std::string& task, const std::string& token) {
  int value = -1;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  check(ec == std::errc() && ptr == token.data() + token.size() && !token.empty(), "task '", task,
        "': '", token, "' is not a class id (class lists look like 0..10/11,12/13..15)");
  return value;
}

std::string trim(const std::string& text) {
  size_t b = text.find_first_not_of(" \t\n\r"), e = text.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
}

// "0..10/11,12/13..15": '/' between steps, ',' between entries, "a..b" inclusive ranges.
Steps parse_class_lists(const std::string& task) {
  Steps steps;
  std::stringstream by_step(task);
  std::string step_text;
  while (std::getline(by_step, step_text, '/')) {
    std::vector<int> step;
    std::stringstream by_entry(step_text);
    std::string entry;
    while (std::getline(by_entry, entry, ',')) {
      entry = trim(entry);
      size_t dots = entry.find("..");
      if (dots == std::string::npos) {
        step.push_back(parse_class_id(task, entry));
        continue;
      }
      int first = parse_class_id(task, trim(entry.substr(0, dots)));
      int last = parse_class_id(task, trim(entry.substr(dots + 2)));
      check(first <= last, "task '", task, "': the range '", entry, "' is empty");
      // In 64 bits: the ids may be any int, so neither the width nor the loop may overflow.
      check(int64_t{last} - first < 256, "task '", task, "': the range '", entry, "' is larger than any label space");
      for (int64_t c = first; c <= last; ++c) step.push_back(static_cast<int>(c));
    }
    check(!step.empty(), "task '", task, "': step ", steps.size(), " is empty");
    steps.push_back(std::move(step));
  }
  if (!task.empty() && task.back() == '/') throw Error(cat("task '", task, "': the last step is empty"));
  return steps;
}

struct ReferenceTask {
  std::string key;
  Steps steps;
};

// The reference key for `name` (resolving aliases), with its steps, or nullopt.
std::optional<ReferenceTask> reference_task(const LabelSpace& labels, const std::string& name) {
  auto split = [&](const std::string& key, const std::vector<int>& parts) {
    return ReferenceTask{key, split_steps(key, parts, labels)};
  };
  if (is_reference_voc(labels)) {
    if (name == "offline" || name == "joint") return ReferenceTask{"offline", {range_inclusive(0, 20)}};
    if (name == "19-1") return split("19-1", {19, 1});
    if (name == "19-1b") {
      std::vector<int> base = range_inclusive(0, 20);
      base.erase(base.begin() + 5);
      return ReferenceTask{"19-1b", {base, {5}}};
    }
    if (name == "15-5") return split("15-5", {15, 5});
    if (name == "15-5s" || name == "15-1") return split("15-5s", {15, 1});
    if (name == "10-5-5") return split("10-5-5", {10, 5, 5});
    if (name == "10-1") return split("10-1", {10, 1});
    if (name == "5-3") return split("5-3", {5, 3});
    std::string key = name;
    if (key.rfind("15-1_", 0) == 0) key = "15-5s_" + key.substr(5);
    auto it = voc_random_orders().find(key);
    if (it != voc_random_orders().end()) return ReferenceTask{key, it->second};
  }
  if (is_reference_ade(labels)) {
    if (name == "offline" || name == "joint") return ReferenceTask{"offline", {range_inclusive(0, 150)}};
    if (name == "100-50") return split("100-50", {100, 50});
    if (name == "100-10") return split("100-10", {100, 10});
    if (name == "100-5") return split("100-5", {100, 5});
    if (name == "50" || name == "50-50") return split("50", {50, 50});
    if (name == "100-50b") return ReferenceTask{"100-50b", {kAde100_50bBase, kAde100_50bNew}};
    if (name == "100-50c") return ReferenceTask{"100-50c", {kAde100_50cBase, kAde100_50cNew}};
    if (name == "100-10b" || name == "100-10c") {
      bool b = name == "100-10b";
      Steps steps = {b ? kAde100_50bBase : kAde100_50cBase};
      for (const std::vector<int>& step : b ? kAde100_10bSteps : kAde100_10cSteps) steps.push_back(step);
      return ReferenceTask{name, steps};
    }
    if (name == "50b") return ReferenceTask{"50b", {kAde50bBase, kAde50bMiddle, kAde100_50bNew}};
    if (name == "50c") return ReferenceTask{"50c", {kAde50cBase, kAde50cMiddle, kAde100_50cNew}};
  }
  if (is_reference_coco(labels)) {
    // The COCO protocols of the continual segmentation literature, in COCO's category order.
    if (name == "offline" || name == "joint") return ReferenceTask{"offline", {range_inclusive(0, 80)}};
    if (name == "40-40") return split("40-40", {40, 40});
    if (name == "40-10") return split("40-10", {40, 10});
    if (name == "60-20") return split("60-20", {60, 20});
  }
  return std::nullopt;
}

std::string valid_tasks_str(const LabelSpace& labels) {
  std::string named;
  if (is_reference_voc(labels))
    named = "offline (joint), 19-1, 19-1b, 15-5, 15-5s (15-1), 15-5s_b ... 15-5s_w (15-1_b ... 15-1_w), 10-5-5, "
            "10-1, 5-3; ";
  if (is_reference_ade(labels))
    named = "offline (joint), 100-50, 100-10, 100-5, 50 (50-50), 100-50b, 100-50c, 100-10b, 100-10c, 50b, 50c; ";
  if (is_reference_coco(labels)) named = "offline (joint), 40-40, 40-10, 60-20; ";
  if (named.empty()) named = "offline; ";
  return cat("valid tasks for ", space_str(labels), ": ", named,
             "a split 'A-B[-C...]' (step 0 = classes 0..A, then steps of B, C, ... classes, the last size "
             "repeated), e.g. 10-2; or class lists such as 0..10/11,12/13..15");
}

}  // namespace

// ---- LabelSpace ----------------------------------------------------------------------------------

LabelSpace LabelSpace::voc() { return {data::DatasetKind::voc, data::voc_class_names()}; }
LabelSpace LabelSpace::ade20k() { return {data::DatasetKind::ade20k, data::ade20k_class_names()}; }
LabelSpace LabelSpace::coco() { return {data::DatasetKind::coco, data::coco_class_names()}; }
LabelSpace LabelSpace::of(const data::Dataset& dataset) { return {dataset.kind(), dataset.class_names()}; }

LabelSpace LabelSpace::numbered(int num_classes, data::DatasetKind kind) {
  check(num_classes >= 2 && num_classes <= 255,
        "LabelSpace::numbered: expected 2..255 labels (background + classes), got ", num_classes);
  LabelSpace labels{kind, {}};
  labels.class_names.push_back(kind == data::DatasetKind::ade20k ? "other" : "background");
  for (int c = 1; c < num_classes; ++c) labels.class_names.push_back(cat("class ", c));
  return labels;
}

// ---- Task ----------------------------------------------------------------------------------------

Task Task::create(const LabelSpace& labels, const std::string& task_text) {
  const std::string text = trim(task_text);
  check(labels.kind != data::DatasetKind::cityscapes, "task '", text,
        "': class-incremental tasks need a label space whose label 0 is background (VOC, ADE20K or a generated "
        "dataset); Cityscapes label 0 is 'road'");
  check(labels.num_classes() >= 2 && labels.num_classes() <= 255, "task '", text, "': the label space has ",
        labels.num_classes(), " labels; expected 2..255");
  check(!text.empty(), "empty task name; ", valid_tasks_str(labels));
  Task task;
  task.labels_ = labels;
  if (std::optional<ReferenceTask> reference = reference_task(labels, text)) {
    task.name_ = reference->key;
    task.steps_ = std::move(reference->steps);
  } else if (text == "offline" || text == "joint") {
    task.name_ = "offline";
    task.steps_ = {range_inclusive(0, labels.num_classes() - 1)};
  } else if (std::optional<std::vector<int>> parts = parse_split(text)) {
    task.name_ = text;
    task.steps_ = split_steps(text, *parts, labels);
  } else if (looks_like_class_lists(text)) {
    return from_class_lists(labels, parse_class_lists(text), text);
  } else {
    throw Error(cat("unknown task '", text, "'; ", valid_tasks_str(labels)));
  }
  task.validate_and_index();
  return task;
}

Task Task::create(const data::Dataset& dataset, const std::string& task) {
  return create(LabelSpace::of(dataset), task);
}

Task Task::from_class_lists(const LabelSpace& labels, std::vector<std::vector<int>> steps, const std::string& name) {
  check(labels.kind != data::DatasetKind::cityscapes, "task '", name,
        "': class-incremental tasks need a label space whose label 0 is background; Cityscapes label 0 is 'road'");
  check(!steps.empty(), "task '", name, "': no steps");
  if (std::find(steps[0].begin(), steps[0].end(), 0) == steps[0].end()) steps[0].insert(steps[0].begin(), 0);
  Task task;
  task.name_ = name;
  task.labels_ = labels;
  task.steps_ = std::move(steps);
  task.validate_and_index();
  return task;
}

std::vector<std::string> Task::reference_names(const LabelSpace& labels) {
  std::vector<std::string> names;
  if (is_reference_voc(labels)) {
    names = {"offline", "joint", "19-1", "19-1b", "15-5", "15-5s", "15-1", "10-5-5", "10-1", "5-3"};
    for (const auto& [key, steps] : voc_random_orders()) {
      names.push_back(key);
      names.push_back("15-1_" + key.substr(6));
    }
  }
  if (is_reference_ade(labels)) {
    names = {"offline", "joint",   "100-50",  "100-10", "100-5", "50", "50-50",
             "100-50b", "100-50c", "100-10b", "100-10c", "50b",  "50c"};
  }
  if (is_reference_coco(labels)) names = {"offline", "joint", "40-40", "40-10", "60-20"};
  return names;
}

void Task::validate_and_index() {
  const int num_classes = labels_.num_classes();
  step_of_.assign(static_cast<size_t>(num_classes), -1);
  channel_of_.assign(static_cast<size_t>(num_classes), -1);
  offsets_.assign(1, 0);
  int channel = 0;
  for (int s = 0; s < num_steps(); ++s) {
    const std::vector<int>& step = steps_[static_cast<size_t>(s)];
    check(!step.empty(), "task '", name_, "': step ", s, " is empty");
    for (size_t i = 0; i < step.size(); ++i) {
      int c = step[i];
      check(c >= 0 && c < num_classes, "task '", name_, "': class ", c, " in step ", s, " is outside ",
            space_str(labels_));
      check(c != 0 || (s == 0 && i == 0), "task '", name_, "': background (0) must be the first class of step 0, ",
            "found it ", s == 0 ? cat("at position ", i, " of step 0") : cat("in step ", s));
      int previous = step_of_[static_cast<size_t>(c)];
      check(previous < 0, "task '", name_, "': class ", c, " (", labels_.class_names[static_cast<size_t>(c)],
            ") is repeated: ", previous == s ? cat("twice in step ", s) : cat("in steps ", previous, " and ", s));
      step_of_[static_cast<size_t>(c)] = s;
      channel_of_[static_cast<size_t>(c)] = channel++;
    }
    offsets_.push_back(channel);
  }
  check(steps_[0].size() >= 2, "task '", name_, "': step 0 must learn at least one class besides background");
}

void Task::check_step(int step) const {
  // Every accessor checks its step: the message, which describes the whole task, is built only
  // when it is needed (check() would build it on every call).
  if (step < 0 || step >= num_steps()) {
    throw Error(cat("task '", name_, "' has steps 0..", num_steps() - 1, " (", describe(), "); got step ", step));
  }
}

const std::vector<int>& Task::classes(int step) const {
  check_step(step);
  return steps_[static_cast<size_t>(step)];
}

std::vector<int> Task::channel_order(int step) const {
  check_step(step);
  std::vector<int> order;
  for (int s = 0; s <= step; ++s) {
    const std::vector<int>& classes = steps_[static_cast<size_t>(s)];
    order.insert(order.end(), classes.begin(), classes.end());
  }
  return order;
}

std::vector<int> Task::classes_per_step(int step) const {
  check_step(step);
  std::vector<int> sizes;
  for (int s = 0; s <= step; ++s) sizes.push_back(static_cast<int>(steps_[static_cast<size_t>(s)].size()));
  return sizes;
}

int Task::num_channels(int step) const {
  check_step(step);
  return offsets_[static_cast<size_t>(step) + 1];
}

int Task::old_channels(int step) const {
  check_step(step);
  return offsets_[static_cast<size_t>(step)];
}

int Task::new_channels(int step) const { return num_channels(step) - old_channels(step); }

int Task::step_of(int raw) const {
  check(raw >= 0 && raw < labels_.num_classes(), "task '", name_, "': label ", raw, " is outside ",
        space_str(labels_));
  return step_of_[static_cast<size_t>(raw)];
}

int Task::channel_of(int step, int raw) const {
  check_step(step);
  int s = step_of(raw);
  return s >= 0 && s <= step ? channel_of_[static_cast<size_t>(raw)] : -1;
}

std::vector<std::string> Task::channel_names(int step) const {
  std::vector<std::string> names;
  for (int raw : channel_order(step)) names.push_back(labels_.class_names[static_cast<size_t>(raw)]);
  return names;
}

std::string Task::describe() const {
  return cat(kind_name(labels_.kind), " ", name_, ": ", num_steps(), num_steps() == 1 ? " step, " : " steps, ",
             steps_str(steps_));
}

}  // namespace strata::incremental

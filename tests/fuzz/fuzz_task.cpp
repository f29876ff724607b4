// Fuzz target: task strings (incremental/task.h): reference keys and aliases ("15-5", "15-1_b",
// "100-50b"), splits ("10-2-2-2") and class lists ("0..10/11,12/13..15"), each against the VOC,
// ADE20K, two numbered and the Cityscapes label spaces. An accepted task's step and channel tables
// must agree with each other.
#include "incremental/task.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace strata;
using incremental::LabelSpace;
using incremental::Task;

// The per-step checks stay O(steps); the last step's channel table is checked label by label.
void check_tables(const Task& task) {
  fuzz::expect(task.num_steps() >= 1, "a task has a step");
  for (int step = 0; step < task.num_steps(); ++step) {
    fuzz::expect(task.old_channels(step) + task.new_channels(step) == task.num_channels(step), "old + new = all");
    fuzz::expect(task.new_channels(step) == static_cast<int>(task.classes(step).size()), "new = the step's classes");
  }
  const int last = task.last_step();
  const std::vector<int> order = task.channel_order(last);
  fuzz::expect(static_cast<int>(order.size()) == task.num_channels(last), "one raw label per channel");
  fuzz::expect(task.channel_names(last).size() == order.size(), "one name per channel");
  for (int raw = 0; raw < task.labels().num_classes(); ++raw) {
    const int channel = task.channel_of(last, raw);
    fuzz::expect(channel == -1 || (channel < task.num_channels(last) && order[static_cast<size_t>(channel)] == raw),
                 "channel_of and channel_order agree");
  }
  fuzz::expect(task.channel_of(0, 0) == 0, "background is channel 0");
  fuzz::refuse_clearly([&] {
    task.check_step(task.num_steps());
    fuzz::expect(false, "a step past the last is refused");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<LabelSpace> spaces = {
      LabelSpace::voc(), LabelSpace::ade20k(), LabelSpace::numbered(11),
      LabelSpace::numbered(255, data::DatasetKind::ade20k),
      LabelSpace{data::DatasetKind::cityscapes, data::cityscapes_class_names()}};
  const std::string text = fuzz::bytes_of(data, size);
  for (const LabelSpace& labels : spaces) {
    fuzz::refuse_clearly([&] { check_tables(Task::create(labels, text)); });
  }
  return 0;
}

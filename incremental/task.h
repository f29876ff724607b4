// Class-incremental tasks (SPEC-continual.md §1): which classes each step learns, and the channel
// order of the model at every step.
//
// A task is a list of steps; step s lists raw dataset label ids in the order the reference task
// dictionaries write them. Step 0 starts with 0 (background is learned at step 0, §1.1); later steps
// never contain 0. At step t the model's channel order is the concatenation of the step lists
// 0..t (§1.2), so channel k at step t is order[k] and a raw label l maps to channel order.index(l).
// For the natural orders (19-1, 15-5, 15-1, 10-1, ADE 100-x, 50-50) this is the identity; for the
// permuted orders (VOC 15-5s_b..w, 19-1b, ADE *b/*c) raw ids are re-indexed, and per-class results
// are indexed by channel. The classifier of step s owns |step s| consecutive channels:
// classes_per_step(3) of 15-1 is [16,1,1,1], C_tot = 19.
//
// Notation (as the SPEC): at step t, C_old = channels of steps 0..t-1 (0 at step 0), N_new = |step t|,
// C_tot = C_old + N_new; old channels are [0, C_old), new channels [C_old, C_tot).
//
// Tasks come from:
//   - the reference task keys (MiB/PLOP tasks.py, SSUL/DKD for 5-3), §1.3-1.5:
//       VOC (21 labels):  offline, 19-1, 19-1b, 15-5, 15-5s, 15-5s_b ... 15-5s_w, 10-5-5, 10-1, 5-3
//       ADE20K (151):     offline, 100-50, 100-10, 100-5, 50, 100-50b/c, 100-10b/c, 50b/c
//       COCO (81):        offline, 40-40, 40-10, 60-20 (the 80 categories in COCO's order, 0 background)
//     with the paper names accepted as aliases (strata's choices table): 15-1 = 15-5s, 15-1_b..w =
//     15-5s_b..w (DKD's names), 50-50 = 50, joint = offline;
//   - a split string "A-B[-C...]" for any label space: step 0 = classes 0..A, then steps of B, C, ...
//     consecutive classes; the last size repeats until every class is in a step (so "10-2-2-2" on 20
//     classes is 0..10 then five steps of 2, "15-1" is 0..15 then five steps of 1, and a single
//     number "A" means "A-A", ADE's "50"). Classes left over that do not fill a whole last step are
//     an error;
//   - explicit class lists, "0..10/11,12/13..15" ('/' between steps, ',' between classes, "a..b" an
//     inclusive range) or from_class_lists(); 0 is prepended to step 0 when absent; classes the
//     lists leave out are never learned (they behave as future classes at every step).
// Reference keys apply when the label space is the reference one (VOC kind with 21 labels, which
// includes a generated dataset of 20 classes, ADE20K kind with 151, or COCO kind with 81); for other
// label spaces the natural-order names are the same split strings, and the permuted names are
// rejected.
//
// Errors (strata::Error naming the task): an unknown name (the message lists the valid ones), a
// step outside [0, num_steps), a class outside the label space, a class repeated, 0 outside the
// head of step 0, an empty step, a step 0 with background only, a split that does not fit the
// classes, a Cityscapes label space (its label 0 is "road", not background).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace strata::incremental {

// The labels of a dataset as the incremental layer sees them: how raw 0 and 255 are read (kind:
// voc and coco = 0 background and 255 void (COCO: crowd); ade20k = 0 "other", no void) and one name
// per raw label value.
struct LabelSpace {
  data::DatasetKind kind = data::DatasetKind::voc;
  std::vector<std::string> class_names;  // index = raw label value, 0 first

  int num_classes() const { return static_cast<int>(class_names.size()); }  // labels incl. 0
  static LabelSpace voc();     // the 21 VOC labels
  static LabelSpace ade20k();  // the 151 ADE20K labels (0 = other)
  static LabelSpace coco();    // background and the 80 COCO categories
  static LabelSpace of(const data::Dataset& dataset);
  // A VOC-layout label space with `num_classes` labels (0..num_classes-1) named "class <k>", 0 "background".
  static LabelSpace numbered(int num_classes, data::DatasetKind kind = data::DatasetKind::voc);
};

// A half-open channel range [begin, end).
struct ChannelRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  bool contains(int channel) const { return channel >= begin && channel < end; }
};

class Task {
 public:
  // A reference key, a paper alias, a split string or class lists (see the file comment).
  static Task create(const LabelSpace& labels, const std::string& task);
  static Task create(const data::Dataset& dataset, const std::string& task);
  // Explicit steps of raw ids; step 0 gets 0 prepended when absent.
  static Task from_class_lists(const LabelSpace& labels, std::vector<std::vector<int>> steps,
                               const std::string& name = "custom");
  // The reference keys and aliases valid for a label space (empty for non-reference spaces).
  static std::vector<std::string> reference_names(const LabelSpace& labels);

  const std::string& name() const { return name_; }  // the reference key ("15-5s" for "15-1")
  const LabelSpace& labels() const { return labels_; }
  int num_steps() const { return static_cast<int>(steps_.size()); }
  int last_step() const { return num_steps() - 1; }

  const std::vector<int>& classes(int step) const;  // raw ids learned at `step`, in channel order
  std::vector<int> channel_order(int step) const;   // raw id of each channel at `step`
  std::vector<int> classes_per_step(int step) const;  // |step 0|, ..., |step|
  int num_channels(int step) const;                   // C_tot
  int old_channels(int step) const;                   // C_old (0 at step 0)
  int new_channels(int step) const;                   // N_new = |step|
  ChannelRange old_range(int step) const { return {0, old_channels(step)}; }
  ChannelRange new_range(int step) const { return {old_channels(step), num_channels(step)}; }

  // The step that learns raw label `raw` (-1 when no step does; raw outside the label space throws).
  int step_of(int raw) const;
  // The channel of raw label `raw` at `step`, or -1 when `raw` is not learned by then.
  int channel_of(int step, int raw) const;
  // Whether `raw` is learned at a step <= `step` (0 always is).
  bool seen(int step, int raw) const { return channel_of(step, raw) >= 0; }
  // Class names in channel order at `step`.
  std::vector<std::string> channel_names(int step) const;

  // Throws naming the task and its valid steps when step is outside [0, num_steps).
  void check_step(int step) const;
  // "voc 15-5s: 6 steps, 0..15 | 16 | 17 | 18 | 19 | 20"
  std::string describe() const;

 private:
  Task() = default;
  void validate_and_index();

  std::string name_;
  LabelSpace labels_;
  std::vector<std::vector<int>> steps_;
  std::vector<int> step_of_;     // per raw label: the step learning it, or -1
  std::vector<int> channel_of_;  // per raw label: its channel once learned, or -1
  std::vector<int> offsets_;     // first channel of each step; offsets_[num_steps] = total
};

}  // namespace strata::incremental

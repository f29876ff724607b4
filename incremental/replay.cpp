#include "incremental/replay.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>

#include "engine/error.h"
#include "engine/ops/pseudo_labels.h"

namespace strata::incremental {

int replay_rows(double ratio, int batch_size) {
  check(std::isfinite(ratio) && ratio > 0 && ratio < 1, "--replay-ratio must be in (0, 1) (the share of each batch ",
        "replayed), got ", ratio);
  check(batch_size >= 2, "--replay-images needs --batch-size >= 2: a batch holds at least one image of the step and ",
        "one replayed, got a batch of ", batch_size);
  const auto rows = static_cast<int>(std::lround(ratio * batch_size));
  return std::clamp(rows, 1, batch_size - 1);
}

data::Dataset open_replay_set(const std::string& dir, bool skip_bad) {
  check(!dir.empty(), "--replay-images: expected a folder (an image set in the VOC layout)");
  std::error_code error;
  check(std::filesystem::is_directory(dir, error), "--replay-images ", dir,
        ": no such folder (expected an image set in the VOC layout, as strata invert or make-dataset writes: ",
        "splits/train.txt, JPEGImages/, SegmentationClassAug/)");
  data::DatasetOptions options;
  options.skip_bad = skip_bad;
  std::optional<data::Dataset> set;
  try {
    set.emplace(data::Dataset::voc(dir, "train", options));
  } catch (const Error& e) {
    throw Error(cat("--replay-images ", dir, ": cannot open it as an image set in the VOC layout (splits/train.txt ",
                    "listing /JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png): ", e.what()));
  }
  return std::move(*set);
}

Tensor batch_rows(const Tensor& t, int64_t begin, int64_t end) {
  check_defined("batch_rows", "t", t);
  check(t.dim() >= 1 && t.is_contiguous(), "batch_rows: expected a contiguous tensor (N, ...), got ", t.describe());
  const int64_t n = t.size(0);
  check(0 <= begin && begin <= end && end <= n, "batch_rows: rows [", begin, ", ", end, ") outside the ", n,
        " rows of ", t.describe());
  check(!t.requires_grad(), "batch_rows: views are not recorded by autograd (", t.describe(), ")");
  const int64_t row = n > 0 ? t.numel() / n : 0;
  Shape shape = t.shape();
  shape[0] = end - begin;
  return t.reshape({1, t.numel()}).narrow_channels(begin * row, end * row).reshape(shape);
}

Tensor with_replayed_labels(const Tensor& labels, const Tensor& teacher_logits, const Tensor& accept_all,
                            int64_t total_channels, bool align_corners) {
  check_defined("with_replayed_labels", "labels", labels);
  check_defined("with_replayed_labels", "teacher_logits", teacher_logits);
  check(labels.dim() == 3 && teacher_logits.dim() == 4 && teacher_logits.size(0) <= labels.size(0),
        "with_replayed_labels: expected labels (N,H,W) and the teacher's logits (R,h,w,C_old) of its last R <= N ",
        "rows, got ", labels.describe(), " and ", teacher_logits.describe());
  const int64_t n = labels.size(0), replayed = teacher_logits.size(0);
  PseudoLabelOptions options;
  options.total_channels = total_channels;
  options.align_corners = align_corners;
  options.ignore_index = 255;
  Tensor out = labels.clone();
  // Every threshold +inf: each pixel the marks leave (label 0 < C_old) takes the teacher's argmax;
  // void (255 >= C_tot) is copied.
  const Tensor marks = batch_rows(out, n - replayed, n);
  const Tensor teacher_labels = entropy_pseudo_labels(teacher_logits, marks, accept_all, options).labels;
  batch_rows(out, n - replayed, n).copy_(teacher_labels);
  return out;
}

}  // namespace strata::incremental

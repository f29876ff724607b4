// Replay of a generated image set (issue 17 item 2; `strata train --replay-images DIR --replay-ratio
// R`, MiB-protocol studies' --deepinversion_images): at a step t >= 1, r of every batch's B images
// come from an image set of the old classes (as `strata invert` writes it from the step t-1
// checkpoint, or any VOC-layout set), and their labels are the teacher's.
//
//   rows          r = round(R * B), at least 1 and at most B - 1 (every batch keeps an image of the
//                 step and replays one), from data::LoaderOptions::replay: the last r rows of each
//                 batch, through the same RandomResizedCrop + flip as the step's own images, their
//                 labels reduced to the void mark (255, else 0; data/loader.h)
//   labels        on the device, inside the iteration (no host synchronisation): for each replayed
//                 pixel that is not void, the argmax over the teacher's C_old channels of its logits
//                 bilinearly upsampled to the crop (the teacher's low-resolution logits read at each
//                 pixel, never a full-resolution plane: engine/ops/pseudo_labels.h's
//                 entropy_pseudo_labels with every threshold +inf, which accepts every pixel). The
//                 teacher's channels are the student's first C_old channels in the same order
//                 (incremental/task.h: the channel order is the concatenation of the step lists), so
//                 teacher channel c is training label c: an old class keeps its meaning (the step's own
//                 images label it background, §2.3). Void pixels (the set's label 255, carried through
//                 the crop and flip; strata's RandomResizedCrop never pads, §4.4) stay 255.
//   the methods   see these labels as any other: CE (FT, LwF, ILT, EWC/PI/RW) learns the old classes
//                 on them; MiB's unbiased CE counts an old-class label as background (its sum over the
//                 old channels), so there replay acts through the distillation on the replayed images;
//                 PLOP's pseudo-labelling relabels them from the teacher again, keeping the confident ones.
//
// Errors (strata::Error naming the option): a ratio outside (0, 1); a batch of fewer than 2 images;
// a folder that is missing, unreadable, not in the VOC layout (DIR/splits/train.txt) or empty.
#pragma once

#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "engine/tensor.h"

namespace strata::incremental {

// The replayed rows of a batch of `batch_size` at `ratio` (see above).
int replay_rows(double ratio, int batch_size);

// The image set in `dir`: data::Dataset::voc(dir, "train"), errors naming --replay-images and the folder.
data::Dataset open_replay_set(const std::string& dir, bool skip_bad);

// Rows [begin, end) of a contiguous tensor (N, ...) as a view of its storage (no copy; not recorded by
// autograd, so `t` must not require a gradient). Throws for a range outside [0, N].
Tensor batch_rows(const Tensor& t, int64_t begin, int64_t end);

// `labels` (N,H,W) u8/i32/i64 with its last R rows replaced by the teacher's labels (see above), a new
// tensor. teacher_logits: (R,h,w,C_old) the teacher's low-resolution logits of those rows; accept_all:
// (C_old) +inf of their dtype and device; total_channels: C_tot; align_corners: the model's upsampling.
// Nothing is read back to the host.
Tensor with_replayed_labels(const Tensor& labels, const Tensor& teacher_logits, const Tensor& accept_all,
                            int64_t total_channels, bool align_corners);

}  // namespace strata::incremental

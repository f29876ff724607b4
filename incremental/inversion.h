// Synthetic replay by model inversion: DeepInversion (Yin et al., "Dreaming to Distill", CVPR 2020)
// for segmentation. Images are optimised from noise so that a frozen step model (the teacher)
// labels them as a target layout of its classes and so that, at every batch norm / In-place ABN,
// the batch statistics of the images' features match the running statistics the model stored in
// training. `strata invert` writes the result as an ordinary VOC-layout dataset that step t+1
// replays (--replay-images).
//
// The objective of one batch x (N,H,W,3), normalised as training images are, after the iteration's
// jitter x_j = roll_flip(x) (engine/ops/shift.h), as NVlabs' deepinversion.py computes it:
//   main_loss_multiplier * CE(teacher(x_j), target_j)                  (mean over pixels)
//   + r_feature * R_feature(x_j)          (engine/nn/feature_statistics.h; first norm x first_bn_multiplier)
//   + tv_l2 * sum_d ||D_d x_j||_2 + tv_l1 * sum_d mean|D_d x_j|        (total variation; D_d the four
//                                                                        neighbour differences)
//   + l2 * mean_n ||x_j[n]||_2
//   + adi_scale * (1 - clamp(JS(student, teacher), 0, 1))              (Adaptive DeepInversion)
// target_j is the target layout under the same jitter (the label map moves with the image; NVlabs'
// classification target has no position). JS is NVlabs' Jensen–Shannon divergence at temperature T
// = 3 with P, Q and M clamped to [0.01, 0.99], as KLDivLoss(reduction='batchmean') over pixels: per
// pixel (a row of channels) and averaged over the N*H*W pixels, the student compared on the
// teacher's channels. Since the term is 1 - JS, minimising it drives the images to where student and
// teacher disagree (the competition).
//
// The optimisation is NVlabs' setting 1 (2k iterations at full resolution; their setting 0 adds a
// half-resolution phase first, not done here): Adam with betas (0.5, 0.9), eps 1e-8 on the images,
// the learning rate warmed up linearly over `warmup_iterations` then cosine-annealed to 0
// (lr_cosine_policy), a jitter of up to `jitter` pixels per axis (torch.roll) and a horizontal flip
// with probability 1/2 per iteration, and after each step the images clipped to the range of
// normalised [0, 1] pixels per channel. The result is the last iterate (NVlabs keeps the iterate of
// lowest loss, which with a decaying learning rate is nearly always the last).
//
// Layouts (the target of an image of class c; channel 0 is background):
//   whole   every pixel is c (NVlabs' classification target, as a map)
//   random  background with one rectangle of c (each side 40..80% of the image, at a uniform
//           position) and, with probability 1/2 and when the teacher knows another class, a smaller
//           rectangle (20..50%) of another of its classes drawn first, so c stays whole on top
//
// Deterministic for a seed: the noise, jitter and flips come from (seed, batch), the layouts from
// (seed, image), whatever the device.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/interrupt.h"
#include "engine/nn/feature_statistics.h"
#include "engine/tensor.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

enum class InversionLayout { whole, random };
// "whole" / "random"; anything else throws naming --layout.
InversionLayout parse_inversion_layout(const std::string& text);
const char* inversion_layout_name(InversionLayout layout);

struct InversionOptions {
  int64_t size = 224;  // image side (NVlabs' resolution)
  int batch_size = 16;
  int iterations = 2000;
  int warmup_iterations = 100;
  double lr = 0.2;
  double beta1 = 0.5, beta2 = 0.9;
  double main_loss_multiplier = 1.0;
  double r_feature = 0.05;
  double first_bn_multiplier = 10.0;
  double tv_l1 = 0.0;
  double tv_l2 = 1e-4;
  double l2 = 1e-5;
  double adi_scale = 0.0;  // the competition's weight; > 0 needs a student
  int64_t jitter = 30;
  bool flip = true;
  bool clip = true;
  uint64_t seed = 42;

  // Throws naming the option ("--iterations must be >= 1, got 0").
  void validate() const;
};

// NVlabs' get_image_prior_losses on x (N,H,W,C): the sum over the four offsets (0,1), (1,0), (-1,1),
// (1,1) of the L2 norm of the differences, and of the mean absolute difference.
Tensor total_variation_l2(const Tensor& x);
Tensor total_variation_l1(const Tensor& x);
// mean over n of ||x[n]||_2 (NVlabs' loss_l2).
Tensor image_l2_norm(const Tensor& x);
// 1 - clamp(JS, 0, 1) of the tempered softmaxes of two (N,H,W,C) logit maps (see the file comment).
Tensor competition_loss(const Tensor& student_logits, const Tensor& teacher_logits, double temperature = 3.0);
// NVlabs' lr_cosine_policy(base, warmup, iterations) at 0-based `iteration`.
double cosine_warmup_lr(double base, int iteration, int warmup, int iterations);

// `targets` (N maps of size x size, row-major) moved as roll_flip moves the images
// (kernels/common/shift.h's map).
std::vector<uint8_t> jitter_targets(const std::vector<uint8_t>& targets, int64_t size, int64_t shift_h, int64_t shift_w,
                                    bool flip);

// The target of image `image` of class channel `channel` (1 <= channel < channels): size x size
// channel indices, row-major.
std::vector<uint8_t> inversion_target(InversionLayout layout, int channel, int channels, int64_t size, uint64_t seed,
                                      int64_t image);

struct InversionTerms {
  double total = 0, cross_entropy = 0, feature = 0, tv_l1 = 0, tv_l2 = 0, l2 = 0, competition = 0;
};

// The terms of one iteration's objective (scalars on the images' device, in their graph).
struct InversionLoss {
  Tensor total, cross_entropy, feature, tv_l1, tv_l2, l2;
  Tensor competition;  // undefined when adi_scale is 0
};

struct InversionBatch {
  Tensor images;                     // (N,H,W,3) f32, normalised, the final iterate (the model's device)
  std::vector<uint8_t> predictions;  // the teacher's argmax channel on the final images, N*H*W (no jitter)
  InversionTerms first, last;        // the terms at the first and the last iteration
};

class DeepInversion {
 public:
  // `teacher`: the model to invert, with at least one norm (its parameters are frozen and it is put
  // in eval mode here; the images take its dtype and device). `student`: the competition's other model (adi_scale > 0),
  // frozen the same way, with at least the teacher's channels. Throws naming what is wrong.
  DeepInversion(models::SegmentationModel& teacher, models::SegmentationModel* student, InversionOptions options);
  ~DeepInversion();
  DeepInversion(const DeepInversion&) = delete;
  DeepInversion& operator=(const DeepInversion&) = delete;

  // The objective (file comment) on already jittered images (N,H,W,3) and their targets (N,H,W)
  // (channel indices, u8/i32/i64) on the images' device.
  InversionLoss loss(const Tensor& jittered_images, const Tensor& jittered_targets);

  // Optimises one batch towards `targets` (N*size*size channel indices, row-major, each < the
  // teacher's channels) from noise drawn from (seed, batch). `on_iteration(i, terms)` after every
  // iteration i (1-based); `terms` is read from the device every `report_every` iterations and at
  // the first and last (null otherwise). Stops with Interrupted when `stop` is raised.
  InversionBatch synthesize(const std::vector<uint8_t>& targets, int64_t batch_index,
                            const std::function<void(int, const InversionTerms*)>& on_iteration = {},
                            int report_every = 20, const StopFlag* stop = nullptr);

  const InversionOptions& options() const { return options_; }
  int64_t channels() const { return channels_; }

 private:
  models::SegmentationModel& teacher_;
  models::SegmentationModel* student_;
  InversionOptions options_;
  int64_t channels_ = 0;
  std::unique_ptr<nn::NormInputRecorder> recorder_;
};

// `strata invert`: a step checkpoint's model inverted into an image set.
struct InvertSetOptions {
  std::string checkpoint;   // the step checkpoint to invert (the teacher)
  std::string student;      // a checkpoint for the competition (adi_scale > 0)
  std::string output;       // the folder to create
  std::string class_names;  // a class_names.txt naming the label space ("": the dataset kind's)
  int images_per_class = 8;
  InversionLayout layout = InversionLayout::whole;
  InversionOptions inversion;
  std::string device;  // "": engine/device.h's default
  bool progress = true;
};

struct InvertSetReport {
  int64_t images = 0;
  std::vector<int> channels;                   // the inverted classes (teacher channels)
  std::vector<double> iou;                     // per teacher channel: the teacher's IoU against the targets
  double mean_iou = 0;                         // over the channels with target pixels
  double chance_mean_iou = 0;                  // the same for a uniformly random labelling
  double feature_first = 0, feature_last = 0;  // R_feature, mean over batches, first and last iteration
  double cross_entropy_first = 0, cross_entropy_last = 0;
  double seconds = 0;
};

// Inverts every class of the checkpoint's model but background, `images_per_class` images each
// (classes interleaved in the batches), and writes, into a staging folder renamed to `output` at the
// end (so a failed or interrupted run leaves no partial set under that name):
//   JPEGImages/<id>.jpg               the images (denormalised, quality 95)
//   SegmentationClassAug/<id>.png     the teacher's prediction on them, as raw dataset labels
//   splits/train.txt                  DeepLab-form list: "/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png"
//   class_names.txt                   the label space's names (so the labels validate)
//   inversion.json                    the checkpoint, every option, and the report below
// with <id> = inv_<raw label>_<k>. Throws naming the file or option when the checkpoint is missing
// or not a step checkpoint, the model has no norm, the output already exists and is not empty, or
// the student does not fit; Interrupted when `stop` is raised (nothing written).
InvertSetReport invert_checkpoint(const InvertSetOptions& options, std::FILE* out, const StopFlag* stop = nullptr);

}  // namespace strata::incremental

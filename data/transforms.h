// Training and evaluation transforms of continual segmentation (SPEC-continual.md §4.4), following
// torchvision 0.14 / Pillow 9.4 as MiB and PLOP use them:
//   train: RandomResizedCrop(crop, scale=(0.5, 2.0), ratio=(3/4, 4/3)) -- image BILINEAR, label
//          NEAREST -- then RandomHorizontalFlip(p=0.5);
//   eval:  Resize(crop) of the shorter side, then CenterCrop(crop); or the full image unchanged.
// Normalisation is not here: the loader emits uint8 and the engine's normalize_image op does it.
//
// Resampling is Pillow's, on uint8, bit for bit:
//   BILINEAR: separable two-pass convolution with the triangle filter whose support grows with
//     the downscaling factor (antialiased when shrinking, plain bilinear when enlarging), weights
//     normalised per output pixel and quantised to 22-bit fixed point, horizontal pass first with
//     rounding to uint8 in between (libImaging/Resample.c);
//   NEAREST: source index floor(box0 + (dst + 0.5) * scale), accumulated in double the way
//     libImaging/Geometry.c ImagingScaleAffine does it.
// torchvision's resized_crop is crop-then-resize, so the filter never reads outside the crop box.
//
// Randomness: every draw for one sample comes from Philox keyed by the seed, with the counter
// (sample index, draw) in a stream that encodes (purpose, epoch). A sample's crop and flip therefore
// depend only on (seed, epoch, sample index), never on threads or on the order samples are visited.
#pragma once

#include <array>
#include <cstdint>

#include "data/image.h"

namespace strata::data {

// A rectangle of an image in pixels; the transforms require it to lie inside the image.
struct CropBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
  bool operator==(const CropBox&) const = default;
};

// Philox streams of the data layer, one per purpose (the high 16 bits of the 64-bit stream id;
// the low 48 bits hold the epoch, the split or, for the replayed set, the cycle through it).
enum class RandomPurpose : uint64_t { shuffle = 1, augment = 2, generate = 3, replay_shuffle = 4, replay_augment = 5 };
uint64_t random_stream(RandomPurpose purpose, uint64_t epoch);

// The random draws of one sample: block k of the 32 Philox blocks reserved for `index`.
class SampleRandom {
 public:
  SampleRandom(uint64_t seed, uint64_t stream, uint64_t index) : seed_(seed), stream_(stream), index_(index) {}
  static constexpr uint64_t kBlocks = 32;
  std::array<uint32_t, 4> block(uint64_t k) const;
  double unit(uint64_t k, int half) const;  // uniform [0,1) from words (2*half, 2*half+1) of block k

 private:
  uint64_t seed_, stream_, index_;
};

// Uniform integer in [0, n) from a 32-bit word (multiply-shift; bias below n / 2^32).
inline int64_t uniform_below(uint32_t word, int64_t n) {
  return static_cast<int64_t>((static_cast<uint64_t>(word) * static_cast<uint64_t>(n)) >> 32);
}

struct ResizedCropOptions {
  double scale_min = 0.5;  // area fraction of the image
  double scale_max = 2.0;
  double ratio_min = 3.0 / 4.0;  // width / height
  double ratio_max = 4.0 / 3.0;
  int attempts = 10;
  double flip_probability = 0.5;
};

// torchvision RandomResizedCrop.get_params: up to `attempts` tries of (area ~ U(scale) * H*W,
// log aspect ~ U(log ratio), w = round(sqrt(area*aspect)), h = round(sqrt(area/aspect))) accepted
// when the box fits, at a uniform position; otherwise the centre fallback below. Draws: block
// 2*attempt and 2*attempt+1 of `random`. `fell_back` (optional) reports the fallback.
CropBox random_resized_crop_box(int height, int width, const ResizedCropOptions& options, const SampleRandom& random,
                                bool* fell_back = nullptr);
// The fallback: the whole image when its aspect is within [ratio_min, ratio_max], else the largest
// centred box with the nearest bound aspect (Python round, floor division for the offsets).
CropBox center_fallback_box(int height, int width, double ratio_min, double ratio_max);
// The flip draw (block kBlocks-1).
bool random_flip(const SampleRandom& random, double probability);

// Resizing as Pillow's Image.crop(box).resize((resized_w, resized_h), filter), writing only the
// `window` of the resized image (window inside [0,resized_h) x [0,resized_w)) into `dst`, which
// holds window.height * window.width * src.channels bytes, HWC. Pixels of the window are
// identical to those of the full resize (each output coordinate is computed independently).
void resize_bilinear(const Image& src, const CropBox& box, int resized_h, int resized_w, const CropBox& window,
                     uint8_t* dst);
void resize_nearest(const Image& src, const CropBox& box, int resized_h, int resized_w, const CropBox& window,
                    uint8_t* dst);
// Whole-output conveniences.
Image resize_bilinear(const Image& src, const CropBox& box, int out_h, int out_w);
Image resize_nearest(const Image& src, const CropBox& box, int out_h, int out_w);

// Mirrors each row in place: data (H, W, C).
void flip_horizontal(uint8_t* data, int height, int width, int channels);

// Eval geometry: torchvision Resize(crop) of the shorter side (long side int(crop*long/short)),
// then CenterCrop(crop) with offsets int(round((size - crop) / 2)) (Python round, half to even).
struct EvalGeometry {
  int resized_h = 0;
  int resized_w = 0;
  CropBox window;
};
EvalGeometry eval_geometry(int height, int width, int crop);

// One training sample: image (H,W,3) and label (H,W,1) of the same size -> image_out
// (crop,crop,3) and label_out (crop,crop) after resized crop and flip.
void train_transform(const Image& image, const Image& label, int crop, const ResizedCropOptions& options,
                     const SampleRandom& random, uint8_t* image_out, uint8_t* label_out);
// One evaluation sample -> (crop,crop,3) and (crop,crop).
void eval_transform(const Image& image, const Image& label, int crop, uint8_t* image_out, uint8_t* label_out);

}  // namespace strata::data

// A generated segmentation dataset in the Pascal VOC layout, so that every test and the demo run
// the real VOC reading code on data that shows the phenomena of continual segmentation.
//
// Each scene is a textured, desaturated background with clutter (label 0) and 1..max_objects
// objects. Class c is a fixed combination of hue (golden-ratio spaced), shade, texture (solid,
// stripes, checker, dots, rings, grid) and shape (circle, square, triangle, diamond, cross,
// annulus, ellipse), so it is learnable from local colour and texture, with shape as an extra cue.
// Every instance varies in scale, stretch, rotation, colour (hue/saturation/value jitter) and
// texture period/phase. Objects drawn later occlude earlier ones and may leave the frame. Classes
// co-occur: class c belongs to group (c-1) mod ceil(C/3), and after the first object of a scene
// each further object comes from the first one's group with probability 0.6, so that with C=20 the
// groups {1,8,15}, {2,9,16}, ... span every usual task split and old and future classes appear in
// each other's images (background shift under the overlapped protocol). Like VOC's val masks,
// every object boundary carries a void band (label 255) `band` pixels wide on each side.
//
// Output (deterministic for a seed: the same options give the same bytes):
//   out/JPEGImages/<id>.jpg                     RGB, JPEG quality `jpeg_quality`
//   out/SegmentationClassAug/<id>.png           8-bit grey labels 0..C and 255
//   out/splits/{train_aug,val}.txt              DeepLab lists ("/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png")
//   out/ImageSets/Segmentation/{train_aug,val}.txt  the same lists as plain ids
//   out/class_names.txt                         background first; read by the VOC reader
//   out/README.txt                              how the data was made
//
// With layout coco the same scenes (without the void band) are written in COCO 2017's layout for
// the COCO reader (data/coco.h), every object an instance annotation:
//   out/train2017/<12-digit id>.jpg, out/val2017/<id>.jpg
//   out/annotations/instances_{train,val}2017.json  images, annotations, then categories (COCO's key
//       order): category ids are COCO's (1..90 with its gaps), names the generated ones; each object
//       is polygons (convex shapes, a concave cross, a ring as two concave halves: multi-part), a
//       compressed RLE string or an uncompressed RLE count list; one in ten is a crowd region;
//       masks overlap and may leave the frame (polygons are clipped as pycocotools clips them)
//   out/README.txt
// All randomness is Philox keyed by the seed with the counter (split, image index, draw), so an
// image does not depend on the number of threads or on how many other images are generated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"

namespace strata::data {

enum class GeneratedLayout { voc, coco };

struct GenerateOptions {
  GeneratedLayout layout = GeneratedLayout::voc;
  int classes = 20;     // object classes 1..classes (1..254)
  int train = 300;      // images in train_aug
  int val = 100;        // images in val
  int size = 128;       // typical side: the shorter side is size * U(0.75, 1.25), aspect U(3/4, 4/3)
  int width = 0;        // when width and height are both > 0, every image has exactly this size
  int height = 0;
  int max_objects = 4;  // objects per scene: 1..max_objects
  int band = 1;         // void band half-width in pixels (0: none)
  int jpeg_quality = 90;
  uint64_t seed = 0;
  int threads = 0;      // 0: all hardware threads
};

struct GeneratedClass {
  std::string name;  // e.g. "red striped circle"
  Rgb colour;        // the class's base colour (instances jitter around it)
  int texture = 0;   // 0 solid, 1 stripes, 2 checker, 3 dots, 4 rings, 5 grid
  int shape = 0;     // 0 circle, 1 square, 2 triangle, 3 diamond, 4 cross, 5 annulus, 6 ellipse
  int group = 0;     // co-occurrence group
};

// The classes of a generated dataset: element 0 is the background, then classes 1..classes.
std::vector<GeneratedClass> generated_classes(int classes);

// One scene: image (H,W,3) and label (H,W,1). `train` selects the split's random stream.
Dataset::Item render_scene(const GenerateOptions& options, bool train, int64_t index);

// Writes the dataset to `out_dir` (created if needed). Throws naming the option or the path.
void generate_dataset(const std::string& out_dir, const GenerateOptions& options);

}  // namespace strata::data

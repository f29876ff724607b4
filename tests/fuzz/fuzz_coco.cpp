// Fuzz target: COCO annotation files (data/coco.h), from their text: the streamed JSON, every
// reference and segmentation shape checked, then each (small) image's label map rasterised from its
// polygons and RLE masks; and the compressed RLE string decoder alone.
#include <sstream>

#include "data/coco.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string text = fuzz::bytes_of(data, size);
  fuzz::refuse_clearly([&] {
    std::istringstream in(text);
    const data::CocoAnnotations coco = data::parse_coco_annotations(in, "instances_fuzz.json");
    const int categories = static_cast<int>(coco.categories.size());
    for (size_t i = 0; i < coco.images.size(); ++i) {
      const data::CocoImage& image = coco.images[i];
      // Large images are valid but slow to rasterise at fuzzing rates.
      if (int64_t{image.height} * image.width > (int64_t{1} << 16)) continue;
      const data::Image label = data::coco_label_map(coco, static_cast<int64_t>(i));
      fuzz::expect(label.height == image.height && label.width == image.width && label.channels == 1,
                   "a label map has its image's size");
      for (uint8_t v : label.pixels) fuzz::expect(v == 255 || v <= categories, "labels are 0..categories or 255");
    }
  });
  fuzz::refuse_clearly([&] {
    const data::RleCounts counts = data::rle_from_string(text, "fuzz");
    const std::string again = data::rle_to_string(counts);
    fuzz::expect(data::rle_from_string(again, "fuzz") == counts, "an RLE string reads back as written");
  });
  return 0;
}

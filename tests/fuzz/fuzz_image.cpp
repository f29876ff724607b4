// Fuzz target: photographs and label maps through stb_image and strata's checks (data/image.h):
// decode_image (JPEG/PNG to RGB), decode_label (grey, palette and RGB PNGs through the VOC colour
// map) followed by each dataset kind's label value check (Dataset::map_label), and probe_image.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

namespace fs = std::filesystem;
using namespace strata;

void write_file(const fs::path& file, const char* text = "") {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// One dataset of each kind, opened once on a temporary folder holding one (empty) sample, for
// their label ranges: VOC 0..20 and 255, ADE20K 0..150, Cityscapes label ids 0..33.
std::vector<data::Dataset> open_datasets() {
  const fs::path root = fs::temp_directory_path() / ("strata_fuzz_image." + std::to_string(::getpid()));
  write_file(root / "voc/ImageSets/Segmentation/val.txt", "x\n");
  write_file(root / "voc/JPEGImages/x.jpg");
  write_file(root / "voc/SegmentationClass/x.png");
  write_file(root / "ade/images/validation/x.jpg");
  write_file(root / "ade/annotations/validation/x.png");
  write_file(root / "cityscapes/leftImg8bit/val/city/x_leftImg8bit.png");
  write_file(root / "cityscapes/gtFine/val/city/x_gtFine_labelIds.png");
  std::vector<data::Dataset> datasets = {data::Dataset::voc((root / "voc").string(), "val"),
                                         data::Dataset::ade20k((root / "ade").string(), "val"),
                                         data::Dataset::cityscapes((root / "cityscapes").string(), "val")};
  fs::remove_all(root);
  return datasets;
}

bool well_formed(const data::Image& image, int channels) {
  return image.height > 0 && image.width > 0 && image.channels == channels &&
         image.pixels.size() == static_cast<size_t>(image.height) * image.width * channels;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<data::Dataset> datasets = open_datasets();
  const std::string bytes = fuzz::bytes_of(data, size);
  fuzz::refuse_clearly(
      [&] { fuzz::expect(well_formed(data::decode_image(bytes, "fuzz.jpg"), 3), "a decoded image is H x W x 3"); });
  fuzz::refuse_clearly([&] {
    const data::Image label = data::decode_label(bytes, "fuzz.png");
    fuzz::expect(well_formed(label, 1), "a decoded label map is H x W x 1");
    for (const data::Dataset& dataset : datasets) {
      fuzz::refuse_clearly([&] {
        const data::Image mapped = dataset.map_label(label, dataset.sample(0));
        fuzz::expect(well_formed(mapped, 1), "a mapped label map keeps its size");
      });
    }
  });
  fuzz::refuse_clearly([&] {
    const data::ImageSize image_size = data::probe_image(bytes, "fuzz.img");
    fuzz::expect(image_size.height > 0 && image_size.width > 0, "a probed image has a size");
  });
  return 0;
}

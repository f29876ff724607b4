// Fuzz target: the dataset list files (data/dataset.h): a VOC split list (DeepLab "<image> <label>"
// lines or ImageSets ids) and a class_names.txt, from their text. (ADE20K and Cityscapes have no
// list files: their samples come from sorted folder listings.)
#include "data/dataset.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string text = fuzz::bytes_of(data, size);
  fuzz::refuse_clearly([&] {
    for (const data::Sample& s :
         data::parse_voc_list(text, "/data/PascalVOC12", "SegmentationClassAug", "splits/train_aug.txt")) {
      fuzz::expect(!s.image.empty() && !s.label.empty() && !s.origin.empty(), "a listed sample has its paths");
    }
  });
  fuzz::refuse_clearly([&] {
    const std::vector<std::string> names = data::parse_class_names(text, "class_names.txt");
    fuzz::expect(names.size() >= 2 && names.size() <= 255, "2..255 class names");
  });
  return 0;
}

// The COCO reader: instance masks against pycocotools' annToMask (polygons convex, concave,
// multi-part and clipped; compressed and uncompressed RLE; crowd), the label maps' drawing order,
// the generated COCO-layout dataset end to end, the label cache, and bad input.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "data/coco.h"
#include "data/dataset.h"
#include "data/generate.h"
#include "data/label_index.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/data/temp_dir.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::data;
namespace fs = std::filesystem;

namespace {

// Image 7 (40 wide, 30 high): a convex triangle, a concave star, a two-part annotation reaching
// past the frame (with an odd trailing number and a two-point polygon after the first), a
// compressed RLE (from pycocotools' encode) and an uncompressed crowd RLE. Image 3 (23 x 17):
// overlapping squares listed smallest first, and two of equal area. Categories come last, with
// COCO-like gaps (1, 3, 17, 90).
const char* kHandwritten = R"({
 "info": {"year": 2017}, "licenses": [],
 "images": [{"id": 7, "file_name": "000000000007.jpg", "height": 30, "width": 40, "license": 1},
            {"id": 3, "file_name": "000000000003.jpg", "height": 17, "width": 23}],
 "annotations": [
  {"id": 11, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 1.0, "bbox": [0, 0, 1, 1],
   "segmentation": [[2.3, 3.7, 25.5, 5.1, 12.2, 24.9]]},
  {"segmentation": [[20.0, 2.0, 23.1, 9.4, 31.0, 10.2, 25.2, 15.1, 27.4, 23.0, 20.0, 18.6, 12.6, 23.0,
                     14.8, 15.1, 9.0, 10.2, 16.9, 9.4]], "id": 12, "image_id": 7, "category_id": 90, "iscrowd": 0},
  {"id": 13, "image_id": 7, "category_id": 3, "iscrowd": 0,
   "segmentation": [[-4.6, 20.2, 8.25, 21.75, 6.5, 33.0, -2.0, 31.5], [33.5, 0.5, 44.0, -3.0, 41.0, 12.5, 36.2, 9.9, 7],
                    [1.0, 1.0, 5.0, 5.0]]},
  {"id": 14, "image_id": 7, "category_id": 17, "iscrowd": 0,
   "segmentation": {"size": [30, 40], "counts": "g14j00000000\\>;YA0000DE5;KE5;KE5;7000000000000a4"}},
  {"id": 15, "image_id": 7, "category_id": 1, "iscrowd": 1,
   "segmentation": {"counts": [18, 12, 18, 12, 18, 12, 18, 12, 18, 12, 18, 12, 18, 12, 18, 12, 19, 11, 20, 10, 21,
                               9, 22, 8, 23, 7, 24, 6, 25, 5, 26, 4, 27, 3, 28, 2, 29, 1, 630], "size": [30, 40]}},
  {"id": 31, "image_id": 3, "category_id": 3, "iscrowd": 0, "segmentation": [[8, 5, 12, 5, 12, 9, 8, 9]]},
  {"id": 32, "image_id": 3, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 1, 20, 1, 20, 15, 2, 15]]},
  {"id": 34, "image_id": 3, "category_id": 90, "iscrowd": 0, "segmentation": [[14, 8, 18, 8, 18, 12, 14, 12]]},
  {"id": 33, "image_id": 3, "category_id": 17, "iscrowd": 0, "segmentation": [[16, 10, 20, 10, 20, 14, 16, 14]]}
 ],
 "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 17, "name": "cat"},
                {"id": 3, "name": "car"}]
})";

struct Reference {
  std::map<int64_t, std::vector<uint8_t>> masks;   // annotation id -> annToMask
  std::map<int64_t, std::vector<uint8_t>> labels;  // image id -> label map by coco.h's rule
};

// tools/coco_reference.py's records for `annotations` (pycocotools must be importable).
Reference pycocotools_reference(const std::string& annotations, const test::TempDir& dir) {
  const std::string out = dir / "reference.bin";
  const std::string command = cat("'", test::python_executable(), "' '", test::source_dir(),
                                  "/tools/coco_reference.py' '", annotations, "' '", out, "' > /dev/null");
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  const std::string bytes = read_file_bytes(out);
  Reference reference;
  for (size_t p = 0; p < bytes.size();) {
    const char kind = bytes[p];
    int64_t id = 0;
    int32_t h = 0, w = 0;
    std::memcpy(&id, bytes.data() + p + 1, 8);
    std::memcpy(&h, bytes.data() + p + 9, 4);
    std::memcpy(&w, bytes.data() + p + 13, 4);
    p += 17;
    std::vector<uint8_t> pixels(bytes.begin() + static_cast<std::ptrdiff_t>(p),
                                bytes.begin() + static_cast<std::ptrdiff_t>(p) + int64_t{h} * w);
    p += static_cast<size_t>(h) * w;
    (kind == 'A' ? reference.masks : reference.labels)[id] = std::move(pixels);
  }
  return reference;
}

// Where two masks differ first, for the failure message.
std::string first_difference(const std::vector<uint8_t>& ours, const std::vector<uint8_t>& theirs, int width) {
  for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
    if (ours[i] != theirs[i]) {
      return cat("first difference at (x=", i % static_cast<size_t>(width), ", y=", i / static_cast<size_t>(width),
                 "): ours ", int{ours[i]}, ", pycocotools ", int{theirs[i]});
    }
  }
  return cat("sizes ", ours.size(), " vs ", theirs.size());
}

void check_against_pycocotools(const std::string& annotations, const test::TempDir& dir) {
  const CocoAnnotations coco = read_coco_annotations(annotations);
  const Reference reference = pycocotools_reference(annotations, dir);
  REQUIRE(reference.masks.size() == coco.annotations.size());
  REQUIRE(reference.labels.size() == coco.images.size());
  std::map<int64_t, size_t> image_of;
  for (size_t i = 0; i < coco.images.size(); ++i) image_of[coco.images[i].id] = i;
  for (const CocoAnnotation& a : coco.annotations) {
    const CocoImage& image = coco.images[image_of.at(a.image_id)];
    const std::vector<uint8_t> ours = annotation_mask(coco, a, image);
    const std::vector<uint8_t>& theirs = reference.masks.at(a.id);
    INFO("annotation " << a.id << ": " << first_difference(ours, theirs, image.width));
    CHECK(ours == theirs);
  }
  for (size_t i = 0; i < coco.images.size(); ++i) {
    const Image label = coco_label_map(coco, static_cast<int64_t>(i));
    const std::vector<uint8_t>& theirs = reference.labels.at(coco.images[i].id);
    INFO("image " << coco.images[i].id << ": " << first_difference(label.pixels, theirs, label.width));
    CHECK(label.pixels == theirs);
  }
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  write_file_atomically(path, text);
}

// A COCO root holding `annotations` as val2017's instances and a blank JPEG per listed image.
void make_root(const test::TempDir& dir, const std::string& annotations) {
  write_text(dir / "annotations/instances_val2017.json", annotations);
  const CocoAnnotations coco = read_coco_annotations(dir / "annotations/instances_val2017.json");
  for (const CocoImage& image : coco.images) {
    write_text(dir / ("val2017/" + image.file_name), encode_jpeg(Image(image.height, image.width, 3), 90));
  }
}

GenerateOptions coco_options() {
  GenerateOptions o;
  o.layout = GeneratedLayout::coco;
  o.classes = 12;
  o.train = 10;
  o.val = 8;
  o.size = 48;
  o.max_objects = 6;
  o.seed = 5;
  o.threads = 2;
  return o;
}

// The error `read_coco_annotations` throws for `text`, written to dir/annotations.json.
std::string error_for(const test::TempDir& dir, const std::string& text) {
  const std::string path = dir / "annotations.json";
  write_text(path, text);
  try {
    read_coco_annotations(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("COCO masks and label maps match pycocotools' annToMask on written annotations", "[cpu]") {
  test::TempDir dir("coco_pycocotools");
  write_text(dir / "annotations.json", kHandwritten);
  check_against_pycocotools(dir / "annotations.json", dir);
  // Every kind of segmentation was read as such, and the masks are not trivially empty.
  const CocoAnnotations coco = read_coco_annotations(dir / "annotations.json");
  std::map<int64_t, const CocoAnnotation*> by_id;
  for (const CocoAnnotation& a : coco.annotations) by_id[a.id] = &a;
  CHECK(by_id.at(14)->kind == SegmentationKind::rle_string);
  CHECK(by_id.at(15)->kind == SegmentationKind::rle_counts);
  CHECK(by_id.at(15)->crowd);
  CHECK(by_id.at(13)->data[0] == 3);  // three polygons
  for (int64_t id : {11, 12, 13, 14, 15}) {
    const std::vector<uint8_t> mask = annotation_mask(coco, *by_id.at(id), coco.images[0]);
    CHECK(std::count(mask.begin(), mask.end(), uint8_t{1}) > 10);
  }
}

TEST_CASE("COCO categories map to 1..N by ascending id, crowd to 255, and overlaps draw larger first", "[cpu]") {
  test::TempDir dir("coco_order");
  write_text(dir / "annotations.json", kHandwritten);
  const CocoAnnotations coco = read_coco_annotations(dir / "annotations.json");
  REQUIRE(coco.categories.size() == 4);
  CHECK(coco.label_of(1) == 1);
  CHECK(coco.label_of(3) == 2);
  CHECK(coco.label_of(17) == 3);
  CHECK(coco.label_of(90) == 4);
  CHECK(coco.label_of(2) == 0);
  // Image 3: the big square (person, 1) under the small one (car, 2) listed before it; the two equal
  // squares (toothbrush id 34, cat id 33) overlap and the higher id is drawn last.
  const Image label = coco_label_map(coco, 1);
  CHECK(label.at(3, 4) == 1);
  CHECK(label.at(7, 10) == 2);
  CHECK(label.at(9, 15) == 4);   // only the toothbrush
  CHECK(label.at(11, 17) == 4);  // both: id 34 after id 33
  CHECK(label.at(13, 19) == 3);  // only the cat
  CHECK(label.at(16, 22) == 0);
  // Image 7: the crowd region is 255 where no instance covers it, and instances cover it.
  const Image first = coco_label_map(coco, 0);
  const std::vector<uint8_t> crowd = annotation_mask(coco, coco.annotations[4], coco.images[0]);
  int crowd_pixels = 0, covered = 0;
  for (size_t p = 0; p < crowd.size(); ++p) {
    if (!crowd[p]) continue;
    ++crowd_pixels;
    if (first.pixels[p] != 255) ++covered;
  }
  CHECK(crowd_pixels == 162);
  CHECK(covered > 0);
  CHECK(covered < crowd_pixels);
}

TEST_CASE("RLE strings round-trip and read pycocotools' encoding", "[cpu]") {
  const RleCounts counts = {0, 5, 300, 2, 1, 70000, 3, 0, 12, 4000000};
  CHECK(rle_from_string(rle_to_string(counts), "test") == counts);
  // pycocotools' mask.encode of a 30 x 40 mask of area 203 (the string of annotation 14 above).
  const RleCounts read = rle_from_string("g14j00000000\\>;YA0000DE5;KE5;KE5;7000000000000a4", "test");
  const std::vector<uint8_t> mask = rle_decode(read, 30, 40, "test");
  CHECK(std::count(mask.begin(), mask.end(), uint8_t{1}) == 203);
  CHECK(rle_to_string(rle_encode(mask, 30, 40)) == "g14j00000000\\>;YA0000DE5;KE5;KE5;7000000000000a4");
  CHECK_THROWS_WITH(rle_from_string("1\x7f", "ann"), Catch::Contains("ann") && Catch::Contains("outside '0'..'o'"));
  CHECK_THROWS_WITH(rle_from_string("1P", "ann"), Catch::Contains("ends inside a count"));
  CHECK_THROWS_WITH(rle_decode({10, 5}, 4, 4, "ann 9"), Catch::Contains("ann 9") && Catch::Contains("sum to 15"));
}

TEST_CASE("a generated COCO-layout dataset reads back as pycocotools labels it", "[cpu]") {
  test::TempDir dir("coco_generated");
  generate_dataset(dir.str(), coco_options());
  const std::string annotations = dir / "annotations/instances_val2017.json";
  const CocoAnnotations coco = read_coco_annotations(annotations);
  // Polygons, both RLE forms, crowd regions and overlapping instances all occur.
  std::map<SegmentationKind, int> kinds;
  int crowd = 0, multi_part = 0;
  for (const CocoAnnotation& a : read_coco_annotations(dir / "annotations/instances_train2017.json").annotations) {
    ++kinds[a.kind];
    crowd += a.crowd;
    multi_part += a.kind == SegmentationKind::polygons && a.data[0] > 1;
  }
  CHECK(kinds.size() == 3);
  CHECK(crowd > 0);
  CHECK(multi_part > 0);
  check_against_pycocotools(annotations, dir);

  const Dataset val = Dataset::coco(dir.str(), "val");
  CHECK(val.kind() == DatasetKind::coco);
  CHECK(val.split() == "val2017");
  CHECK(val.size() == 8);
  CHECK(val.num_classes() == 13);
  CHECK(val.class_names()[1] == generated_classes(12)[1].name);
  const Reference reference = pycocotools_reference(annotations, dir);
  int overlapping = 0;
  for (int64_t i = 0; i < val.size(); ++i) {
    const Dataset::Item item = val.read(i);
    const CocoImage& image = coco.images[static_cast<size_t>(i)];  // written in file-name order
    CHECK(val.sample(i).stem + ".jpg" == image.file_name);
    CHECK(item.label.pixels == reference.labels.at(image.id));
    std::vector<int> cover(item.label.pixels.size(), 0);
    for (int64_t k : coco.annotations_of_image[static_cast<size_t>(i)]) {
      const std::vector<uint8_t> mask = annotation_mask(coco, coco.annotations[static_cast<size_t>(k)], image);
      for (size_t p = 0; p < mask.size(); ++p) cover[p] += mask[p];
    }
    overlapping += std::count_if(cover.begin(), cover.end(), [](int c) { return c > 1; }) > 0;
  }
  CHECK(overlapping > 0);
  // The label index filters COCO images by class as VOC's.
  const LabelIndex index = load_label_index(val);
  CHECK(index.size() == 8);
  CHECK(fs::exists(dir / "strata_label_index_coco_val2017.json"));
}

TEST_CASE("COCO label maps are cached next to the data and rewritten when the annotations change", "[cpu]") {
  test::TempDir dir("coco_cache");
  make_root(dir, kHandwritten);
  const Dataset first = Dataset::coco(dir.str(), "val2017", {}, 1);
  REQUIRE(first.size() == 2);
  CHECK(first.sample(0).stem == "000000000003");
  const std::string label = dir / "strata_labels/val2017/000000000003.png";
  REQUIRE(fs::exists(label));
  CHECK(fs::exists(dir / "strata_labels/val2017.json"));
  CHECK(first.class_names() == std::vector<std::string>{"background", "person", "car", "cat", "toothbrush"});
  const auto written = fs::last_write_time(label);
  const Image before = first.read_label(0);

  // Reused: the annotation file is not even read again (a damaged one would throw).
  const Dataset second = Dataset::coco(dir.str(), "val", {}, 1);
  CHECK(fs::last_write_time(label) == written);
  CHECK(second.read_label(0).pixels == before.pixels);

  // A newer annotation file rewrites them: image 3's small square changes category.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string changed = kHandwritten;
  const std::string from = R"("id": 31, "image_id": 3, "category_id": 3)";
  changed.replace(changed.find(from), from.size(), R"("id": 31, "image_id": 3, "category_id": 17)");
  write_text(dir / "annotations/instances_val2017.json", changed);
  const Dataset third = Dataset::coco(dir.str(), "val2017", {}, 1);
  CHECK(fs::last_write_time(label) != written);
  const Image after = third.read_label(0);
  CHECK(before.at(7, 10) == 2);
  CHECK(after.at(7, 10) == 3);
}

TEST_CASE("bad COCO input names the file and the annotation", "[cpu]") {
  test::TempDir dir("coco_bad");
  CHECK_THROWS_WITH(Dataset::coco(dir.str(), "val2017"),
                    Catch::Contains("val2017") && Catch::Contains("does not exist"));
  fs::create_directories(dir / "val2017");
  CHECK_THROWS_WITH(Dataset::coco(dir.str(), "val2017"),
                    Catch::Contains("instances_val2017.json") && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(read_coco_annotations(dir / "missing.json"), Catch::Contains("missing.json"));

  const std::string path = dir / "annotations.json";
  std::string truncated = kHandwritten;
  truncated.resize(truncated.size() / 2);
  CHECK_THAT(error_for(dir, truncated), Catch::Contains(path) && Catch::Contains("malformed JSON at byte"));

  auto replaced = [](const std::string& from, const std::string& to) {
    std::string text = kHandwritten;
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  const std::string unknown_category = error_for(
      dir, replaced(R"("id": 32, "image_id": 3, "category_id": 1)", R"("id": 32, "image_id": 3, "category_id": 2)"));
  CHECK_THAT(unknown_category, Catch::Contains(path) && Catch::Contains("annotation id 32") &&
                                   Catch::Contains("category_id 2 is not in the file's categories"));
  const std::string unknown_image =
      error_for(dir, replaced(R"("id": 32, "image_id": 3)", R"("id": 32, "image_id": 4)"));
  CHECK_THAT(unknown_image, Catch::Contains("annotation id 32") && Catch::Contains("image_id 4"));
  // Shapes: a flat coordinate list, a number, an RLE without size, a box-like first polygon, and
  // the id after the segmentation (annotation 12 lists it last).
  const std::string flat = error_for(dir, replaced("[[2.3, 3.7, 25.5, 5.1, 12.2, 24.9]]", "[2.3, 3.7, 25.5, 5.1]"));
  CHECK_THAT(flat, Catch::Contains(path) && Catch::Contains("annotation id 11") &&
                       Catch::Contains("segmentation of unknown shape"));
  const std::string number =
      error_for(dir, replaced("[[20.0, 2.0, 23.1, 9.4, 31.0, 10.2, 25.2, 15.1, 27.4, 23.0, 20.0, 18.6, 12.6, 23.0,\n   "
                              "                  14.8, 15.1, 9.0, 10.2, 16.9, 9.4]]",
                              "7"));
  CHECK_THAT(number, Catch::Contains("annotation id 12") && Catch::Contains("segmentation of unknown shape"));
  const std::string no_size = error_for(dir, replaced(R"({"size": [30, 40], "counts")", R"({"counts")"));
  CHECK_THAT(no_size, Catch::Contains("annotation id 14") && Catch::Contains("unknown shape"));
  const std::string box = error_for(dir, replaced("[[2.3, 3.7, 25.5, 5.1, 12.2, 24.9]]", "[[2.3, 3.7, 25.5, 5.1]]"));
  CHECK_THAT(box, Catch::Contains("annotation id 11") && Catch::Contains("more than 4 coordinates"));
  const std::string wrong_size =
      error_for(dir, replaced(R"({"size": [30, 40], "counts")", R"({"size": [40, 30], "counts")"));
  CHECK_THAT(wrong_size, Catch::Contains("annotation id 14") && Catch::Contains("RLE size 40x30"));
  // Counts that do not cover the image are found when the mask is made.
  write_text(path, replaced("26, 4, 27, 3, 28, 2, 29, 1, 630]", "26, 4, 27, 3, 28, 2, 29, 1, 600]"));
  const CocoAnnotations coco = read_coco_annotations(path);
  CHECK_THROWS_WITH(coco_label_map(coco, 0),
                    Catch::Contains(path) && Catch::Contains("annotation id 15") && Catch::Contains("sum to 1170"));
  CHECK_THAT(error_for(dir, R"({"images": [], "annotations": []})"), Catch::Contains("missing: categories"));
}

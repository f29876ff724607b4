// Datasets on disk: the generated dataset read back through the VOC reader (both list forms), the
// ADE20K and Cityscapes layouts, the label index against a brute-force scan and its cache
// invalidation, the errors for bad input, and bad labels recorded in the cache but skipped only by
// runs that ask for it.
#include <catch2/catch.hpp>

#include <bitset>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/dataset.h"
#include "data/generate.h"
#include "data/label_index.h"
#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "tests/data/temp_dir.h"
#include "tests/support/capture_stderr.h"

using namespace strata;
using namespace strata::data;
namespace fs = std::filesystem;

namespace {

GenerateOptions small_options() {
  GenerateOptions o;
  o.classes = 6;
  o.train = 24;
  o.val = 8;
  o.size = 48;
  o.seed = 3;
  o.threads = 2;
  return o;
}

std::bitset<256> scan(const Image& label) {
  std::bitset<256> present;
  for (uint8_t v : label.pixels) present.set(v);
  return present;
}

void write_text(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

}  // namespace

TEST_CASE("generated dataset reads back through the VOC reader in both list forms", "[cpu]") {
  test::TempDir dir("voc");
  GenerateOptions o = small_options();
  generate_dataset(dir.str(), o);

  Dataset train = Dataset::voc(dir.str(), "train_aug");
  CHECK(train.size() == 24);
  CHECK(train.source() == "splits/train_aug.txt");
  CHECK(train.num_classes() == 7);
  CHECK(train.class_names()[0] == "background");
  CHECK(train.class_names() == [&] {
    std::vector<std::string> names;
    for (const auto& c : generated_classes(6)) names.push_back(c.name);
    return names;
  }());
  CHECK(train.sample(0).stem == "train_00000");
  CHECK(train.sample(23).stem == "train_00023");

  // The plain ImageSets form lists the same files.
  DatasetOptions plain;
  plain.list_file = "ImageSets/Segmentation/val.txt";
  Dataset val_plain = Dataset::voc(dir.str(), "val", plain);
  Dataset val = Dataset::voc(dir.str(), "val");
  REQUIRE(val.size() == 8);
  REQUIRE(val_plain.size() == 8);
  for (int64_t i = 0; i < 8; ++i) {
    CHECK(fs::equivalent(val.sample(i).image, val_plain.sample(i).image));
    CHECK(fs::equivalent(val.sample(i).label, val_plain.sample(i).label));
  }

  // What the reader returns is what the generator rendered (labels exactly, JPEG pixels closely).
  for (int64_t i : {0, 5, 23}) {
    Dataset::Item item = train.read(i);
    Dataset::Item rendered = render_scene(o, true, i);
    CHECK(item.label.pixels == rendered.label.pixels);
    REQUIRE(item.image.pixels.size() == rendered.image.pixels.size());
    double error = 0;
    for (size_t p = 0; p < item.image.pixels.size(); ++p) error += std::abs(item.image.pixels[p] - rendered.image.pixels[p]);
    CHECK(error / static_cast<double>(item.image.pixels.size()) < 8.0);
    for (uint8_t v : item.label.pixels) REQUIRE((v <= 6 || v == 255));
  }
}

TEST_CASE("label index matches a brute-force scan, and the cache is reused only while it matches the data", "[cpu]") {
  test::TempDir dir("index");
  generate_dataset(dir.str(), small_options());
  Dataset train = Dataset::voc(dir.str(), "train_aug");

  LabelIndex brute(train.size());
  for (int64_t i = 0; i < train.size(); ++i) brute.set(i, scan(train.read(i).label));

  bool rebuilt = false;
  LabelIndex index = load_label_index(train, 3, &rebuilt);
  CHECK(rebuilt);
  CHECK(index == brute);
  CHECK(fs::exists(label_index_cache_path(train)));
  CHECK(fs::path(label_index_cache_path(train)).filename() == "strata_label_index_voc_train_aug.json");
  CHECK(index == build_label_index(train, 1));  // independent of the thread count

  LabelIndex again = load_label_index(train, 2, &rebuilt);
  CHECK_FALSE(rebuilt);
  CHECK(again == brute);

  // Every image has background and at least one object; images_with agrees with contains.
  for (int64_t i = 0; i < index.size(); ++i) {
    CHECK(index.contains(i, 0));
    std::vector<int> labels = index.labels(i);
    CHECK(std::count_if(labels.begin(), labels.end(), [](int l) { return l >= 1 && l <= 6; }) >= 1);
  }
  for (int c = 0; c <= 6; ++c) {
    for (int64_t i : index.images_with(c)) CHECK(index.contains(i, c));
  }

  // A label file rewritten with other content is noticed (size/mtime), and the index follows it.
  std::string label_path = train.sample(4).label;
  Image label = read_label(label_path);
  std::fill(label.pixels.begin(), label.pixels.end(), uint8_t{5});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  write_file_atomically(label_path, encode_png(label));
  LabelIndex changed = load_label_index(train, 2, &rebuilt);
  CHECK(rebuilt);
  CHECK(changed.labels(4) == std::vector<int>{5});
  load_label_index(train, 2, &rebuilt);
  CHECK_FALSE(rebuilt);

  // A reordered list is another list: indices refer to list order, so the cache is rebuilt.
  std::ifstream in(dir / "splits/train_aug.txt");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::swap(lines[0], lines[1]);
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  write_text(dir / "splits/train_aug.txt", text);
  Dataset reordered = Dataset::voc(dir.str(), "train_aug");
  LabelIndex swapped = load_label_index(reordered, 2, &rebuilt);
  CHECK(rebuilt);
  CHECK(swapped.present(0) == changed.present(1));
  CHECK(swapped.present(1) == changed.present(0));

  // A corrupt cache file is rebuilt, not trusted.
  write_text(label_index_cache_path(reordered), "{\"format\": \"strata-label-index 1\", \"entries\": [");
  CHECK(load_label_index(reordered, 2, &rebuilt) == swapped);
  CHECK(rebuilt);
}

TEST_CASE("ADE20K layout: sorted images, annotations by stem, labels 0..150", "[cpu]") {
  test::TempDir dir("ade");
  fs::path base = dir.path() / "ADEChallengeData2016";
  fs::create_directories(base / "images/validation");
  fs::create_directories(base / "annotations/validation");
  // Written out of order: the reader sorts by name.
  for (int i : {3, 1, 2}) {
    std::string stem = "ADE_val_0000000" + std::to_string(i);
    Image image(8 + i, 10, 3);
    Image label(8 + i, 10, 1);
    std::fill(label.pixels.begin(), label.pixels.end(), static_cast<uint8_t>(i == 2 ? 150 : i));
    write_file_atomically((base / "images/validation" / (stem + ".jpg")).string(), encode_jpeg(image, 90));
    write_file_atomically((base / "annotations/validation" / (stem + ".png")).string(), encode_png(label));
  }
  Dataset ade = Dataset::ade20k(dir.str(), "val");
  CHECK(ade.split() == "validation");
  CHECK(ade.num_classes() == 151);
  CHECK(ade20k_class_names().size() == 151);
  CHECK(ade.class_names()[1] == "wall");
  CHECK(ade.class_names()[150] == "flag");
  REQUIRE(ade.size() == 3);
  CHECK(ade.sample(0).stem == "ADE_val_00000001");
  CHECK(ade.sample(2).stem == "ADE_val_00000003");
  CHECK(ade.read(1).label.at(0, 0) == 150);
  CHECK(ade.read(2).image.height == 11);
  LabelIndex index = load_label_index(ade);
  CHECK(index.labels(1) == std::vector<int>{150});
  CHECK(fs::exists(dir / "strata_label_index_ade20k_validation.json"));

  // 151 and above do not exist in ADE20K.
  Image bad(9, 10, 1);
  std::fill(bad.pixels.begin(), bad.pixels.end(), uint8_t{151});
  write_file_atomically((base / "annotations/validation/ADE_val_00000001.png").string(), encode_png(bad));
  CHECK_THROWS_WITH(ade.read(0), Catch::Contains("ADE_val_00000001.png") && Catch::Contains("value 151") &&
                                     Catch::Contains("range 0..150"));
  CHECK_THROWS_WITH(Dataset::ade20k(dir.str(), "test"), Catch::Contains("'training' or 'validation'"));
}

TEST_CASE("Cityscapes layout: label ids map to the 19 train ids, others to 255", "[cpu]") {
  const auto& table = cityscapes_label_to_train_id();
  CHECK(table[7] == 0);    // road
  CHECK(table[8] == 1);    // sidewalk
  CHECK(table[11] == 2);   // building
  CHECK(table[24] == 11);  // person
  CHECK(table[26] == 13);  // car
  CHECK(table[31] == 16);  // train
  CHECK(table[33] == 18);  // bicycle
  for (int id : {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30}) CHECK(table[static_cast<size_t>(id)] == 255);
  int used = 0;
  for (int id = 0; id < 256; ++id) used += table[static_cast<size_t>(id)] != 255 ? 1 : 0;
  CHECK(used == 19);

  test::TempDir dir("cityscapes");
  for (const char* city : {"zurich", "aachen"}) {
    fs::create_directories(dir.path() / "leftImg8bit/val" / city);
    fs::create_directories(dir.path() / "gtFine/val" / city);
    std::string prefix = std::string(city) + "_000000_000019";
    Image image(4, 34, 3);
    Image label(4, 34, 1);
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 34; ++x) label.at(y, x) = static_cast<uint8_t>(x);
    }
    write_file_atomically((dir.path() / "leftImg8bit/val" / city / (prefix + "_leftImg8bit.png")).string(), encode_png(image));
    write_file_atomically((dir.path() / "gtFine/val" / city / (prefix + "_gtFine_labelIds.png")).string(), encode_png(label));
  }
  Dataset cs = Dataset::cityscapes(dir.str(), "val");
  CHECK(cs.num_classes() == 19);
  CHECK(cs.class_names()[13] == "car");
  REQUIRE(cs.size() == 2);
  CHECK(cs.sample(0).stem == "aachen_000000_000019");  // sorted by city
  Image mapped = cs.read(0).label;
  for (int x = 0; x < 34; ++x) CHECK(mapped.at(2, x) == table[static_cast<size_t>(x)]);

  Image bad(4, 34, 1);
  std::fill(bad.pixels.begin(), bad.pixels.end(), uint8_t{40});
  write_file_atomically(cs.sample(1).label, encode_png(bad));
  CHECK_THROWS_WITH(cs.read(1), Catch::Contains("zurich_000000_000019_gtFine_labelIds.png") &&
                                    Catch::Contains("value 40"));
}

TEST_CASE("bad VOC input: clear errors naming the file and list line, or skipped with skip_bad", "[cpu]") {
  test::TempDir dir("badvoc");
  generate_dataset(dir.str(), small_options());

  CHECK_THROWS_WITH(Dataset::voc(dir.str(), "trainval"),
                    Catch::Contains("no list file") && Catch::Contains("splits/trainval.txt") &&
                        Catch::Contains("ImageSets/Segmentation/trainval.txt"));
  CHECK_THROWS_WITH(Dataset::voc(dir / "nowhere", "val"), Catch::Contains("does not exist"));

  write_text(dir / "splits/three.txt", "/JPEGImages/train_00000.jpg /SegmentationClassAug/train_00000.png\n"
                                       "/JPEGImages/train_00001.jpg /SegmentationClassAug/train_00001.png extra\n");
  CHECK_THROWS_WITH(Dataset::voc(dir.str(), "three"), Catch::Contains("three.txt:2") && Catch::Contains("3 fields"));

  write_text(dir / "splits/missing.txt", "/JPEGImages/train_00000.jpg /SegmentationClassAug/train_00000.png\n"
                                         "/JPEGImages/nope.jpg /SegmentationClassAug/train_00001.png\n");
  CHECK_THROWS_WITH(Dataset::voc(dir.str(), "missing"),
                    Catch::Contains("missing.txt:2") && Catch::Contains("nope.jpg") && Catch::Contains("does not exist"));
  DatasetOptions skip;
  skip.skip_bad = true;
  Dataset kept = Dataset::voc(dir.str(), "missing", skip);
  CHECK(kept.size() == 2);  // the entry stays, so indices keep the list order
  CHECK_THROWS_WITH(kept.read(1), Catch::Contains("nope.jpg"));

  // A label whose size differs from its image: both files named, nothing resized.
  Dataset train = Dataset::voc(dir.str(), "train_aug");
  Image small(5, 7, 1);
  write_file_atomically(train.sample(2).label, encode_png(small));
  CHECK_THROWS_WITH(train.read(2), Catch::Contains("train_00002.png") && Catch::Contains("train_00002.jpg") &&
                                       Catch::Contains("is 7x5"));

  // Label values outside 0..C and 255.
  Image out_of_range = read_label(train.sample(3).label);
  out_of_range.at(1, 2) = 9;
  write_file_atomically(train.sample(3).label, encode_png(out_of_range));
  CHECK_THROWS_WITH(train.read(3), Catch::Contains("train_00003.png") && Catch::Contains("value 9") &&
                                       Catch::Contains("(x=2, y=1)") && Catch::Contains("0..6 and 255"));
  // The label index reports the first bad sample in list order, or marks it bad with skip_bad.
  CHECK_THROWS_WITH(build_label_index(train, 2), Catch::Contains("train_00003.png"));
  Dataset lenient = Dataset::voc(dir.str(), "train_aug", skip);
  LabelIndex index = build_label_index(lenient, 2);
  CHECK(index.bad(3));
  CHECK_FALSE(index.bad(2));  // size mismatches are the loader's to find; the label itself is fine
  CHECK(index.labels(3).empty());

  // A corrupt image.
  write_text(train.sample(5).image, "\xFF\xD8\xFF garbage");
  CHECK_THROWS_WITH(train.read(5), Catch::Contains("train_00005.jpg"));
}

TEST_CASE("bad labels: the cache records what is wrong, each run's skip_bad decides (the --skip-bad sequence)",
          "[cpu]") {
  test::TempDir dir("skipbad");
  generate_dataset(dir.str(), small_options());
  DatasetOptions skip;
  skip.skip_bad = true;
  Dataset strict = Dataset::voc(dir.str(), "train_aug");
  Dataset lenient = Dataset::voc(dir.str(), "train_aug", skip);
  const LabelIndex clean = build_label_index(strict, 2);
  const std::string corrupt_path = strict.sample(3).label, range_path = strict.sample(6).label;
  const std::string corrupt_bytes = read_file_bytes(corrupt_path), range_bytes = read_file_bytes(range_path);
  // A truncated PNG (its header intact) and a label value outside 0..6 and 255.
  write_file_atomically(corrupt_path, corrupt_bytes.substr(0, corrupt_bytes.size() / 2));
  Image out_of_range = read_label(range_path);
  out_of_range.at(2, 1) = 9;
  write_file_atomically(range_path, encode_png(out_of_range));

  // 1. A --skip-bad run scans, logs each bad label once (file and reason) and leaves it out.
  bool rebuilt = false;
  LabelIndex skipped;
  {
    test::CaptureStderr err;
    skipped = load_label_index(lenient, 2, &rebuilt);
    CHECK(err.count("skipping sample 3 (train_00003): cannot decode '" + corrupt_path + "'") == 1);
    CHECK(err.count("skipping sample 6 (train_00006): label map '" + range_path + "'") == 1);
    CHECK(err.count("value 9 at pixel (x=1, y=2) is outside the voc range 0..6 and 255") == 1);
    CHECK(err.count("skipping sample") == 2);
  }
  CHECK(rebuilt);
  CHECK(skipped.bad_count() == 2);
  CHECK(skipped.bad(3));
  CHECK(skipped.bad(6));
  CHECK(skipped.labels(3).empty());
  for (int64_t i = 0; i < clean.size(); ++i) {
    if (i != 3 && i != 6) CHECK(skipped.present(i) == clean.present(i));
  }
  // The cache holds the reasons, not a decision.
  const json::Value cache = json::parse(read_file_bytes(label_index_cache_path(lenient)));
  CHECK(cache.at("format").as_string() == "strata-label-index 2");
  const json::Array& entries = cache.at("entries").as_array();
  CHECK(entries[3].at("error").as_string() == skipped.error(3));
  CHECK(entries[6].at("error").as_string() == skipped.error(6));
  CHECK(entries[3].find("bad") == nullptr);
  CHECK(entries[4].find("error") == nullptr);

  // 2. The same root without skip_bad: the recorded error, naming the file and the reason, not a
  //    smaller index; the same message a fresh scan gives, with the other bad file listed.
  std::string from_cache, from_scan;
  try {
    load_label_index(strict, 2, &rebuilt);
  } catch (const Error& e) {
    from_cache = e.what();
  }
  CHECK_FALSE(rebuilt);
  try {
    build_label_index(strict, 1);
  } catch (const Error& e) {
    from_scan = e.what();
  }
  INFO(from_cache);
  CHECK(from_cache.find("label index of splits/train_aug.txt: cannot decode '" + corrupt_path + "'") == 0);
  CHECK(from_cache.find("1 other sample is bad too:\n  label map '" + range_path + "'") != std::string::npos);
  CHECK(from_cache.find("value 9") != std::string::npos);
  CHECK(from_cache.find("--skip-bad") != std::string::npos);
  CHECK(from_cache == from_scan);

  // 3. skip_bad again: the same samples skipped with the same messages, from the cache.
  {
    test::CaptureStderr err;
    CHECK(load_label_index(lenient, 2, &rebuilt) == skipped);
    CHECK_FALSE(rebuilt);
    CHECK(err.count("skipping sample 3 (train_00003): " + skipped.error(3)) == 1);
    CHECK(err.count("skipping sample 6 (train_00006): " + skipped.error(6)) == 1);
  }

  // 4. A fixed file (new size and mtime) is read again and used; the one still bad is still named.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  write_file_atomically(corrupt_path, corrupt_bytes);
  CHECK_THROWS_WITH(load_label_index(strict, 2, &rebuilt),
                    Catch::Contains(range_path) && !Catch::Contains(corrupt_path) && !Catch::Contains("other"));
  CHECK(rebuilt);
  write_file_atomically(range_path, range_bytes);
  LabelIndex fixed = load_label_index(strict, 2, &rebuilt);
  CHECK(rebuilt);
  CHECK(fixed == clean);

  // A cache written before bad files were recorded with their reason (format 1: "bad": true,
  // decided by the run that wrote it) is rebuilt, never trusted.
  std::string old = read_file_bytes(label_index_cache_path(strict));
  old.replace(old.find("strata-label-index 2"), 20, "strata-label-index 1");
  const std::string entry = "\"label\":\"SegmentationClassAug/train_00003.png\"";
  const size_t at = old.find("\"labels\"", old.find(entry));
  REQUIRE(at != std::string::npos);
  old.replace(at, old.find(']', at) + 1 - at, "\"bad\":true");
  write_text(label_index_cache_path(strict), old);
  CHECK(load_label_index(strict, 2, &rebuilt) == clean);
  CHECK(rebuilt);

  // Messages name the files under the root as given: a cache holding bad files is rebuilt under
  // another spelling of the root, so the messages name the files as this run reaches them.
  write_file_atomically(range_path, encode_png(out_of_range));
  {
    test::CaptureStderr err;
    load_label_index(lenient, 2, &rebuilt);
    CHECK(rebuilt);
  }
  Dataset respelled = Dataset::voc(dir.str() + "/.", "train_aug");
  CHECK_THROWS_WITH(load_label_index(respelled, 2, &rebuilt), Catch::Contains(respelled.sample(6).label));
  CHECK(rebuilt);
  CHECK(respelled.sample(6).label != range_path);
}

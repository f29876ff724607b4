// The generated dataset: deterministic bytes for a seed (whatever the thread count), the class
// design (distinct classes, every class present), co-occurrence, occlusion (objects meeting), the
// void band and image sizes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "data/dataset.h"
#include "data/generate.h"
#include "data/label_index.h"
#include "engine/error.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using namespace strata::data;
namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> folder_bytes(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), root).generic_string()] = read_file_bytes(e.path().string());
  }
  return files;
}

}  // namespace

TEST_CASE("make-dataset output is byte-identical for a seed, whatever the thread count", "[cpu]") {
  test::TempDir a("gen_a"), b("gen_b"), c("gen_c");
  GenerateOptions o;
  o.classes = 8;
  o.train = 12;
  o.val = 4;
  o.size = 56;
  o.seed = 77;
  o.threads = 1;
  generate_dataset(a.str(), o);
  o.threads = 4;
  generate_dataset(b.str(), o);
  auto fa = folder_bytes(a.path()), fb = folder_bytes(b.path());
  CHECK(fa.size() == 2 * 16 + 4 + 2);  // images, labels, 4 lists, class_names.txt, README.txt
  CHECK(fa == fb);
  CHECK(fa.count("README.txt"));
  CHECK(fa.at("splits/val.txt").find("/JPEGImages/val_00003.jpg /SegmentationClassAug/val_00003.png") !=
        std::string::npos);

  o.seed = 78;
  generate_dataset(c.str(), o);
  auto fc = folder_bytes(c.path());
  CHECK(fc.at("JPEGImages/train_00000.jpg") != fa.at("JPEGImages/train_00000.jpg"));
  // An image does not depend on how many others are generated.
  o.seed = 77;
  o.train = 3;
  CHECK(render_scene(o, true, 2).label.pixels == read_label(a / "SegmentationClassAug/train_00002.png").pixels);
}

TEST_CASE("generated classes are distinct combinations of colour, texture and shape", "[cpu]") {
  std::vector<GeneratedClass> classes = generated_classes(20);
  REQUIRE(classes.size() == 21);
  CHECK(classes[0].name == "background");
  std::set<std::string> names;
  std::set<std::tuple<int, int, int, int, int>> looks;
  for (size_t c = 1; c < classes.size(); ++c) {
    names.insert(classes[c].name);
    const GeneratedClass& k = classes[c];
    looks.insert({k.colour[0], k.colour[1], k.colour[2], k.texture, k.shape});
    CHECK(k.group == static_cast<int>((c - 1) % 7));
  }
  CHECK(names.size() == 20);
  CHECK(looks.size() == 20);
  CHECK_THROWS_WITH(generated_classes(255), Catch::Contains("1..254"));
}

TEST_CASE("generated scenes: every class appears, classes co-occur by group, boundaries are void", "[cpu]") {
  GenerateOptions o;
  o.classes = 20;
  o.size = 64;
  o.seed = 5;
  const int scenes = 300;
  std::vector<std::set<int>> present(static_cast<size_t>(scenes));
  std::map<int, int> class_images;
  int multi = 0, with_band = 0, void_pixels = 0, pixels = 0, touching = 0;
  for (int i = 0; i < scenes; ++i) {
    Dataset::Item s = render_scene(o, true, i);
    CHECK(s.image.height == s.label.height);
    CHECK(s.image.width == s.label.width);
    CHECK(std::min(s.image.height, s.image.width) >= 48 - 1);
    CHECK(std::min(s.image.height, s.image.width) <= 80 + 1);
    std::set<int>& p = present[static_cast<size_t>(i)];
    for (uint8_t v : s.label.pixels) {
      p.insert(v);
      void_pixels += v == 255;
    }
    pixels += static_cast<int>(s.label.pixels.size());
    with_band += p.count(255) ? 1 : 0;
    int objects = 0;
    for (int v : p) {
      if (v >= 1 && v <= 20) {
        ++objects;
        ++class_images[v];
      }
      REQUIRE((v <= 20 || v == 255));
    }
    multi += objects >= 2 ? 1 : 0;
    // Two different objects meet when a void pixel has both within 2 pixels.
    bool meet = false;
    for (int y = 0; y < s.label.height && !meet; ++y) {
      for (int x = 0; x < s.label.width && !meet; ++x) {
        if (s.label.at(y, x) != 255) continue;
        std::set<int> near;
        for (int dy = -2; dy <= 2; ++dy) {
          for (int dx = -2; dx <= 2; ++dx) {
            int yy = y + dy, xx = x + dx;
            if (yy < 0 || xx < 0 || yy >= s.label.height || xx >= s.label.width) continue;
            int v = s.label.at(yy, xx);
            if (v != 0 && v != 255) near.insert(v);
          }
        }
        meet = near.size() >= 2;
      }
    }
    touching += meet ? 1 : 0;
  }
  CHECK(class_images.size() == 20);  // every class appears
  for (const auto& [c, n] : class_images) CHECK(n >= 8);
  CHECK(multi > scenes / 3);
  CHECK(with_band == scenes);
  CHECK(void_pixels > pixels / 50);  // a band around every object
  CHECK(void_pixels < pixels / 4);

  // Pairs in the same group ({c, c+7, c+14}) appear together far more often than other pairs.
  int same = 0, same_pairs = 0, other = 0, other_pairs = 0;
  for (int a = 1; a <= 20; ++a) {
    for (int b = a + 1; b <= 20; ++b) {
      int together = 0;
      for (const auto& p : present) together += p.count(a) && p.count(b) ? 1 : 0;
      if ((a - 1) % 7 == (b - 1) % 7) {
        same += together;
        ++same_pairs;
      } else {
        other += together;
        ++other_pairs;
      }
    }
  }
  double same_rate = static_cast<double>(same) / same_pairs, other_rate = static_cast<double>(other) / other_pairs;
  INFO("images per pair: same group " << same_rate << ", other " << other_rate);
  CHECK(same_rate > 3 * other_rate);

  CHECK(touching > scenes / 10);  // occlusion: objects overlap and meet along a shared void band
}

TEST_CASE("generated datasets can have a fixed image size and reject bad options", "[cpu]") {
  GenerateOptions o;
  o.width = 500;
  o.height = 375;
  o.classes = 3;
  Dataset::Item s = render_scene(o, false, 0);
  CHECK(s.image.width == 500);
  CHECK(s.image.height == 375);
  GenerateOptions bad = o;
  bad.classes = 0;
  CHECK_THROWS_WITH(render_scene(bad, true, 0), Catch::Contains("--classes"));
  bad = o;
  bad.width = 0;
  CHECK_THROWS_WITH(render_scene(bad, true, 0), Catch::Contains("both width and height"));
  bad = GenerateOptions{};
  bad.train = 0;
  bad.val = 0;
  test::TempDir dir("gen_bad");
  CHECK_THROWS_WITH(generate_dataset(dir.str(), bad), Catch::Contains("--train"));
}

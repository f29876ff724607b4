// The list-file parsers on their own, from text (Dataset::voc reads its files through them; the
// fuzz target fuzz_list feeds them arbitrary bytes): both VOC line forms, blank lines, line numbers
// in errors, and class_names.txt.
#include <catch2/catch.hpp>

#include "data/dataset.h"

using namespace strata::data;

TEST_CASE("VOC list text: DeepLab and ImageSets lines, blank lines skipped, line numbers kept", "[cpu]") {
  const std::vector<Sample> samples = parse_voc_list("/JPEGImages/a.jpg /SegmentationClassAug/a.png\n\n  \t\r\nb\r\n",
                                                     "/data/voc", "SegmentationClass", "splits/x.txt");
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].image == "/data/voc/JPEGImages/a.jpg");
  CHECK(samples[0].label == "/data/voc/SegmentationClassAug/a.png");
  CHECK(samples[0].stem == "a");
  CHECK(samples[0].origin == "splits/x.txt:1");
  CHECK(samples[1].image == "/data/voc/JPEGImages/b.jpg");
  CHECK(samples[1].label == "/data/voc/SegmentationClass/b.png");
  CHECK(samples[1].origin == "splits/x.txt:4");
  CHECK(parse_voc_list("", "/data/voc", "SegmentationClass", "empty.txt").empty());
  CHECK_THROWS_WITH(parse_voc_list("a\nb c d\n", "/data/voc", "SegmentationClass", "splits/y.txt"),
                    Catch::Contains("splits/y.txt:2") && Catch::Contains("3 fields") && Catch::Contains("'b c d'"));
}

TEST_CASE("class_names.txt text: one trimmed name per line, 2..255 of them", "[cpu]") {
  CHECK(parse_class_names("background\r\n  cat \n\ndog\n", "names.txt") ==
        std::vector<std::string>{"background", "cat", "dog"});
  CHECK_THROWS_WITH(parse_class_names("background\n", "names.txt"),
                    Catch::Contains("'names.txt'") && Catch::Contains("2..255") && Catch::Contains("found 1"));
  std::string many;
  for (int i = 0; i < 256; ++i) many.append(1, 'c').append(std::to_string(i)).append(1, '\n');
  CHECK_THROWS_WITH(parse_class_names(many, "names.txt"), Catch::Contains("found 256"));
}

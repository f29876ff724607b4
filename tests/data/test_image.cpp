// Image I/O: decoding of fixture images written by the test itself (RGB and grey PNG, JPEG, a VOC
// palette PNG), the VOC colour map, and the errors for files that are not what they claim.
#include <catch2/catch.hpp>

#include <cstring>

#include "data/image.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using namespace strata::data;

namespace {

Image pattern(int h, int w, int c) {
  Image image(h, w, c);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int ch = 0; ch < c; ++ch) image.at(y, x, ch) = static_cast<uint8_t>((x * 37 + y * 11 + ch * 85) % 256);
    }
  }
  return image;
}

uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

// Rewrites palette entry `index` of a palette PNG made by encode_voc_palette_png (and its CRC).
std::string repaint_palette(std::string png, int index, Rgb colour) {
  size_t at = png.find("PLTE");
  REQUIRE(at != std::string::npos);
  size_t data = at + 4;
  for (int c = 0; c < 3; ++c) png[data + 3 * index + c] = static_cast<char>(colour[static_cast<size_t>(c)]);
  uint32_t crc = crc32(png.substr(at, 4 + 768));
  for (int b = 0; b < 4; ++b) png[data + 768 + b] = static_cast<char>(crc >> (24 - 8 * b));
  return png;
}

}  // namespace

TEST_CASE("PNG round trip: RGB photographs and 8-bit grey label maps are exact", "[cpu]") {
  test::TempDir dir("png");
  Image rgb = pattern(13, 17, 3);
  write_file_atomically(dir / "rgb.png", encode_png(rgb));
  Image back = read_image(dir / "rgb.png");
  CHECK(back.height == 13);
  CHECK(back.width == 17);
  CHECK(back.channels == 3);
  CHECK(back.pixels == rgb.pixels);

  Image labels = pattern(9, 21, 1);
  write_file_atomically(dir / "labels.png", encode_png(labels));
  Image lab = read_label(dir / "labels.png");
  CHECK(lab.channels == 1);
  CHECK(lab.pixels == labels.pixels);
  // A grey PNG read as a photograph becomes grey RGB.
  Image grey_rgb = read_image(dir / "labels.png");
  CHECK(grey_rgb.channels == 3);
  CHECK(grey_rgb.at(4, 5, 0) == labels.at(4, 5));
  CHECK(grey_rgb.at(4, 5, 2) == labels.at(4, 5));
  CHECK(probe_image(read_file_bytes(dir / "rgb.png"), "rgb.png").width == 17);
}

TEST_CASE("JPEG round trip stays close to the original", "[cpu]") {
  // Smooth content: JPEG at quality 95 reproduces it within a few levels.
  Image smooth(32, 48, 3);
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 48; ++x) {
      smooth.at(y, x, 0) = static_cast<uint8_t>(x * 5);
      smooth.at(y, x, 1) = static_cast<uint8_t>(y * 7);
      smooth.at(y, x, 2) = 128;
    }
  }
  std::string bytes = encode_jpeg(smooth, 95);
  Image back = decode_image(bytes, "smooth.jpg");
  REQUIRE(back.height == 32);
  REQUIRE(back.width == 48);
  double total = 0;
  int worst = 0;
  for (size_t i = 0; i < back.pixels.size(); ++i) {
    int e = std::abs(int{back.pixels[i]} - int{smooth.pixels[i]});
    total += e;
    worst = std::max(worst, e);
  }
  CHECK(total / static_cast<double>(back.pixels.size()) < 2.0);
  CHECK(worst <= 16);
}

TEST_CASE("VOC colour map: known colours and an exact round trip of all 256 indices", "[cpu]") {
  const auto& map = voc_colormap();
  CHECK(map[0] == Rgb{0, 0, 0});
  CHECK(map[1] == Rgb{128, 0, 0});     // aeroplane
  CHECK(map[15] == Rgb{192, 128, 128});  // person
  CHECK(map[20] == Rgb{0, 64, 128});   // tvmonitor
  CHECK(map[255] == Rgb{224, 224, 192});  // void
  for (int i = 0; i < 256; ++i) REQUIRE(voc_color_index(map[static_cast<size_t>(i)]) == i);
  CHECK(voc_color_index(Rgb{128, 0, 1}) == -1);
  CHECK(voc_color_index(Rgb{255, 255, 255}) == -1);
}

TEST_CASE("palette PNG labels (VOC SegmentationClass) decode to class indices", "[cpu]") {
  test::TempDir dir("palette");
  Image labels(6, 10, 1);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 10; ++x) labels.at(y, x) = static_cast<uint8_t>(x < 3 ? 0 : x < 6 ? 15 : x < 9 ? 20 : 255);
  }
  std::string png = encode_voc_palette_png(labels);
  CHECK(static_cast<uint8_t>(png[25]) == 3);  // colour type 3: a palette image
  write_file_atomically(dir / "2007_000032.png", png);
  Image back = read_label(dir / "2007_000032.png");
  CHECK(back.channels == 1);
  CHECK(back.pixels == labels.pixels);

  // The same labels written as RGB colours decode the same way.
  Image rgb(6, 10, 3);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 10; ++x) {
      for (int c = 0; c < 3; ++c) rgb.at(y, x, c) = voc_colormap()[labels.at(y, x)][static_cast<size_t>(c)];
    }
  }
  CHECK(decode_label(encode_png(rgb), "rgb.png").pixels == labels.pixels);

  // A palette colour outside the VOC map is rejected with the file, pixel and colour.
  std::string foreign = repaint_palette(png, 15, Rgb{1, 2, 3});
  CHECK_THROWS_WITH(decode_label(foreign, "bad_palette.png"),
                    Catch::Contains("bad_palette.png") && Catch::Contains("(1,2,3)") &&
                        Catch::Contains("pixel (x=3, y=0)") && Catch::Contains("not in the VOC colour map"));
}

TEST_CASE("corrupt, truncated and unsupported files are errors naming the file", "[cpu]") {
  test::TempDir dir("corrupt");
  CHECK_THROWS_WITH(read_image(dir / "missing.jpg"), Catch::Contains("missing.jpg") && Catch::Contains("cannot open"));

  write_file_atomically(dir / "garbage.jpg", "this is not an image at all");
  CHECK_THROWS_WITH(read_image(dir / "garbage.jpg"),
                    Catch::Contains("garbage.jpg") && Catch::Contains("not a JPEG or PNG"));

  std::string jpeg = encode_jpeg(pattern(40, 40, 3), 90);
  write_file_atomically(dir / "truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  CHECK_THROWS_WITH(read_image(dir / "truncated.jpg"), Catch::Contains("truncated.jpg") && Catch::Contains("truncated"));

  std::string broken = jpeg;
  for (size_t i = 2; i < 200 && i < broken.size(); ++i) broken[i] = static_cast<char>(0x5A);  // header destroyed
  write_file_atomically(dir / "broken.jpg", broken);
  CHECK_THROWS_WITH(read_image(dir / "broken.jpg"), Catch::Contains("cannot decode") &&
                                                        Catch::Contains("broken.jpg"));

  std::string png = encode_png(pattern(20, 20, 1));
  write_file_atomically(dir / "truncated.png", png.substr(0, png.size() - 30));
  CHECK_THROWS_WITH(read_label(dir / "truncated.png"), Catch::Contains("truncated.png"));

  // Labels must be lossless 8-bit: JPEG, 16-bit grey and RGBA label files are refused.
  write_file_atomically(dir / "label.jpg", jpeg);
  CHECK_THROWS_WITH(read_label(dir / "label.jpg"), Catch::Contains("label.jpg") && Catch::Contains("not a PNG"));
  std::string deep = png;
  deep[24] = 16;  // IHDR bit depth
  CHECK_THROWS_WITH(decode_label(deep, "deep.png"), Catch::Contains("deep.png") && Catch::Contains("16-bit"));
  std::string rgba = png;
  rgba[25] = 6;  // IHDR colour type RGBA
  CHECK_THROWS_WITH(decode_label(rgba, "rgba.png"), Catch::Contains("rgba.png") && Catch::Contains("colour type 6"));
}

// Found by fuzz_image: a 371-byte JPEG whose header claims 16952x21328 pixels decoded (stb_image
// pads the missing data with zeros) into 1 GB, copied into a second 1 GB image.
TEST_CASE("images whose header claims more than kMaxImagePixels are refused before decoding", "[cpu]") {
  std::string jpeg = encode_jpeg(pattern(16, 16, 3), 90);
  const size_t sof = jpeg.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  for (size_t at : {sof + 5, sof + 7}) {  // height, width: 9000 = 0x2328
    jpeg[at] = 0x23;
    jpeg[at + 1] = 0x28;
  }
  CHECK_THROWS_WITH(decode_image(jpeg, "huge.jpg"),
                    Catch::Contains("'huge.jpg': 9000x9000 pixels") && Catch::Contains("more than the 67108864"));
  std::string png = encode_png(pattern(4, 4, 1));
  for (size_t at : {size_t{16}, size_t{20}}) {  // IHDR width, height: 10000 = 0x2710
    png[at + 2] = 0x27;
    png[at + 3] = 0x10;
  }
  CHECK_THROWS_WITH(decode_label(png, "huge.png"), Catch::Contains("'huge.png': 10000x10000 pixels"));
  CHECK_THROWS_WITH(decode_image(png, "huge.png"), Catch::Contains("'huge.png': 10000x10000 pixels"));
}

// Found by fuzz_image: a scan naming a Huffman table the file never defined made stb_image 2.27
// decode from uninitialised memory (a wild read that crashed the fuzzer).
TEST_CASE("a JPEG scan using an undefined Huffman table is refused before stb_image reads it", "[cpu]") {
  const std::string jpeg = encode_jpeg(pattern(16, 16, 3), 90);
  REQUIRE(decode_image(jpeg, "fine.jpg").width == 16);
  const size_t sos = jpeg.find("\xFF\xDA");
  REQUIRE(sos != std::string::npos);
  REQUIRE(jpeg[sos + 4] == 3);  // three components, each an id and a Td << 4 | Ta byte
  std::string bad_ac = jpeg;
  bad_ac[sos + 8] = 0x13;  // the second component: DC table 1, AC table 3
  CHECK_THROWS_WITH(decode_image(bad_ac, "bad_ac.jpg"),
                    Catch::Contains("'bad_ac.jpg': a scan uses AC Huffman table 3, which the file does not define"));
  std::string bad_dc = jpeg;
  bad_dc[sos + 6] = 0x20;  // the first component: DC table 2, AC table 0
  CHECK_THROWS_WITH(decode_image(bad_dc, "bad_dc.jpg"), Catch::Contains("uses DC Huffman table 2"));
  // A later scan, behind entropy-coded data holding 0xFF 0xFF 0x00, which stb reads as one stuffed
  // byte and not as a marker (the walk used to stop there, and fuzz_image found its way past it).
  const std::string end_of_image = "\xFF\xD9";
  REQUIRE(jpeg.substr(jpeg.size() - 2) == end_of_image);
  const std::string later_scan = jpeg.substr(0, jpeg.size() - 2) + std::string("\x12\xFF\xFF\x00\x34", 5) +
                                 std::string("\xFF\xDA\x00\x08\x01\x01\x03\x00\x3F\x00\x55", 11) + end_of_image;
  CHECK_THROWS_WITH(decode_image(later_scan, "later.jpg"), Catch::Contains("uses AC Huffman table 3"));
}

// Found by fuzz_image: a 187-byte PNG whose IDAT chunk claimed 1.6 GB made stb_image grow its
// buffer to 2 GB before finding the data missing.
TEST_CASE("a PNG chunk claiming more bytes than the file holds is refused before decoding", "[cpu]") {
  std::string png = encode_png(pattern(4, 4, 1));
  const size_t idat = png.find("IDAT") - 4;
  png[idat] = 0x60;  // its length: 0x60xxxxxx bytes
  CHECK_THROWS_WITH(decode_label(png, "lying.png"),
                    Catch::Contains("'lying.png': the PNG chunk at byte 33 claims 16106127") &&
                        Catch::Contains("truncated or corrupt PNG"));
  CHECK_THROWS_WITH(decode_image(png, "lying.png"), Catch::Contains("the PNG chunk at byte 33"));
}

// Found by fuzz_image: probe_image read any header stb_image knows and gave 0x0 for the 4-byte
// PNM header "P6BS".
TEST_CASE("probe_image reads JPEG and PNG headers only, and never gives an empty size", "[cpu]") {
  CHECK_THROWS_WITH(probe_image("P6BS", "odd.ppm"),
                    Catch::Contains("cannot read the header of 'odd.ppm'") && Catch::Contains("not a JPEG or PNG"));
  CHECK_THROWS_WITH(probe_image("P6\n0 0\n255\n", "empty.ppm"), Catch::Contains("not a JPEG or PNG"));
  std::string png = encode_png(pattern(4, 6, 3));
  for (size_t at : {size_t{16}, size_t{17}, size_t{18}, size_t{19}}) png[at] = 0;  // IHDR width 0
  CHECK_THROWS_WITH(probe_image(png, "zero.png"), Catch::Contains("cannot read the header of 'zero.png'"));
  const ImageSize size = probe_image(encode_jpeg(pattern(4, 6, 3), 80), "fine.jpg");
  CHECK((size.width == 6 && size.height == 4));
}

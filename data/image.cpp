// Image I/O on stb_image / stb_image_write (Debian's libstb; the implementations are compiled into
// the library). The palette PNG encoder is written here because stb_image_write has none: it
// stores the zlib stream uncompressed (RFC 1950/1951 "stored" blocks), which every PNG reader
// accepts; it is used to write VOC SegmentationClass-style fixtures and visualisations.
#include "data/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

#include "engine/error.h"

namespace strata::data {

namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool is_png(const std::string& bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0;
}

bool is_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
         static_cast<uint8_t>(bytes[2]) == 0xFF;
}

// stb_image decodes a JPEG whose entropy data stops early without complaint (it pads with
// zeros), so a truncated download would become a silently grey image. A complete JPEG ends with
// the end-of-image marker FF D9; entropy-coded data never contains FF D9 (FF is stuffed as FF 00),
// so its absence means truncation. (An EXIF thumbnail carries its own FF D9 near the start, so a
// file truncated right after its thumbnail is not detected; stb then fails or pads.)
bool jpeg_has_end_marker(const std::string& bytes) {
  for (size_t i = bytes.size(); i >= 2; --i) {
    if (static_cast<uint8_t>(bytes[i - 2]) == 0xFF && static_cast<uint8_t>(bytes[i - 1]) == 0xD9) return true;
  }
  return false;
}

// stb_image 2.27 decodes a scan with a Huffman table the file never defined, reading the table
// from uninitialised memory (found by fuzz_image: wild reads, crashes). So the markers are walked
// as stb walks them and such a file is refused. A scan uses DC table Td where it codes DC
// coefficients from Huffman codes and AC table Ta where it codes AC coefficients: both in a
// baseline scan; in a progressive one (SOF2) Td in a first DC scan (Ss = 0, Ah = 0), Ta in an AC
// scan (Ss > 0). Segments stb refuses for other reasons end the walk: stb reports them.
void check_jpeg_huffman_tables(const std::string& bytes, const std::string& name) {
  auto byte = [&](size_t at) { return static_cast<uint8_t>(bytes[at]); };
  auto is_restart = [](uint8_t marker) { return marker >= 0xD0 && marker <= 0xD7; };
  std::array<bool, 4> dc_defined{}, ac_defined{};
  bool progressive = false;
  size_t at = 2;  // after SOI
  while (at + 4 <= bytes.size()) {
    const uint8_t marker = byte(at + 1);
    if (byte(at) != 0xFF || marker == 0xFF) {  // bytes between segments, fill bytes
      ++at;
      continue;
    }
    if (marker == 0xD9) return;  // EOI
    if (marker == 0xD8 || is_restart(marker)) {
      at += 2;
      continue;
    }
    const size_t length = size_t{byte(at + 2)} << 8 | byte(at + 3), begin = at + 4, end = at + 2 + length;
    if (length < 2 || end > bytes.size()) return;
    if (marker == 0xC2) progressive = true;
    if (marker == 0xC4) {  // DHT: one or more tables, each a class/id byte, 16 counts and the values
      for (size_t table = begin; table + 17 <= end;) {
        const int table_class = byte(table) >> 4, id = byte(table) & 15;
        if (table_class <= 1 && id <= 3) (table_class == 0 ? dc_defined : ac_defined)[static_cast<size_t>(id)] = true;
        size_t values = 0;
        for (size_t i = 1; i <= 16; ++i) values += byte(table + i);
        table += 17 + values;
      }
    }
    at = end;
    if (marker != 0xDA) continue;
    const size_t components = byte(begin);  // SOS: count, (id, Td << 4 | Ta) each, Ss, Se, Ah << 4 | Al
    if (length != 6 + 2 * components) return;
    const bool first_dc = byte(end - 3) == 0 && (!progressive || byte(end - 1) >> 4 == 0);
    const bool ac = !progressive || byte(end - 3) > 0;
    for (size_t c = 0; c < components; ++c) {
      const size_t dc_table = byte(begin + 2 + 2 * c) >> 4, ac_table = byte(begin + 2 + 2 * c) & 15;
      check(!first_dc || dc_table > 3 || dc_defined[dc_table], "cannot decode '", name,
            "': a scan uses DC Huffman table ", dc_table, ", which the file does not define (corrupt JPEG)");
      check(!ac || ac_table > 3 || ac_defined[ac_table], "cannot decode '", name, "': a scan uses AC Huffman table ",
            ac_table, ", which the file does not define (corrupt JPEG)");
    }
    // The entropy-coded data runs to the next marker: 0xFF followed by neither a stuffed 0x00 nor a
    // restart marker. Like stb, a run of 0xFF bytes counts as one (0xFF 0xFF 0x00 is a stuffed byte).
    while (at + 1 < bytes.size()) {
      if (byte(at) != 0xFF) {
        ++at;
        continue;
      }
      size_t next = at + 1;
      while (next < bytes.size() && byte(next) == 0xFF) ++next;
      if (next < bytes.size() && (byte(next) == 0x00 || is_restart(byte(next)))) {
        at = next + 1;
        continue;
      }
      at = next - 1;  // the last 0xFF of the run starts the marker
      break;
    }
  }
}

// stb_image trusts a PNG chunk's length and grows its buffer for the chunk before reading it, so
// a 200-byte file claiming a 1.6 GB IDAT allocates 2 GB (found by fuzz_image). Every chunk must
// fit in the file.
void check_png_chunks(const std::string& bytes, const std::string& name) {
  for (size_t at = 8; at + 8 <= bytes.size();) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + at);
    const size_t length = size_t{p[0]} << 24 | size_t{p[1]} << 16 | size_t{p[2]} << 8 | p[3];
    const size_t room = bytes.size() - at - 8;  // after the length and the type
    check(length + 4 <= room, "cannot decode '", name, "': the PNG chunk at byte ", at, " claims ", length,
          " bytes but the file ends ", room, " bytes later (truncated or corrupt PNG)");
    if (std::memcmp(p + 4, "IEND", 4) == 0) return;
    at += 12 + length;
  }
}

struct PngHeader {
  int width, height, bit_depth, color_type;
};

PngHeader png_header(const std::string& bytes, const std::string& name) {
  check(bytes.size() >= 33 && std::memcmp(bytes.data() + 12, "IHDR", 4) == 0, "'", name,
        "': PNG header is truncated or has no IHDR chunk");
  auto be32 = [&](size_t at) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + at);
    return static_cast<int>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
  };
  return {be32(16), be32(20), static_cast<uint8_t>(bytes[24]), static_cast<uint8_t>(bytes[25])};
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

Image stb_decode(const std::string& bytes, const std::string& name, int channels) {
  check(bytes.size() <= static_cast<size_t>(INT32_MAX), "'", name, "': file too large to decode");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(bytes.size());
  int w = 0, h = 0, in_file = 0;
  // A header stb cannot read fails the decode below with stb's reason.
  if (stbi_info_from_memory(data, size, &w, &h, &in_file)) {
    check(int64_t{w} * h <= kMaxImagePixels, "'", name, "': ", w, "x", h, " pixels (width x height) is more than the ",
          kMaxImagePixels, " strata decodes (8192 x 8192); is the header corrupt?");
  }
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(data, size, &w, &h, &in_file, channels));
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw Error(cat("cannot decode '", name, "': ", reason ? reason : "unknown error", " (corrupt or unsupported image)"));
  }
  Image image(h, w, channels);
  std::memcpy(image.pixels.data(), pixels.get(), image.pixels.size());
  return image;
}

void append_be32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t crc32(const char* data, size_t n, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ static_cast<uint8_t>(data[i])) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void append_chunk(std::string& out, const char* type, const std::string& data) {
  append_be32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  append_be32(out, crc32(body.data(), body.size()));
}

void stb_append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  check(in.good(), "cannot open '", path, "' (missing or unreadable file)");
  std::streamsize size = in.tellg();
  check(size >= 0, "cannot read '", path, "'");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  check(in.good() || (in.eof() && in.gcount() == size), "error reading '", path, "'");
  return bytes;
}

Image decode_image(const std::string& bytes, const std::string& name) {
  if (is_jpeg(bytes)) {
    check(jpeg_has_end_marker(bytes), "cannot decode '", name, "': truncated JPEG (no end-of-image marker)");
    check_jpeg_huffman_tables(bytes, name);
  } else {
    check(is_png(bytes), "cannot decode '", name, "': not a JPEG or PNG file (", bytes.size(), " bytes)");
    check_png_chunks(bytes, name);
  }
  return stb_decode(bytes, name, 3);
}

Image read_image(const std::string& path) { return decode_image(read_file_bytes(path), path); }

Image decode_label(const std::string& bytes, const std::string& name) {
  check(is_png(bytes), "label map '", name, "' is not a PNG file (label maps must be lossless 8-bit PNGs)");
  PngHeader header = png_header(bytes, name);
  check_png_chunks(bytes, name);
  if (header.color_type == 0) {
    check(header.bit_depth == 8, "label map '", name, "': grey PNG with ", header.bit_depth,
          "-bit samples; expected 8-bit label values");
    return stb_decode(bytes, name, 1);
  }
  check((header.color_type == 3) || (header.color_type == 2 && header.bit_depth == 8), "label map '", name,
        "': PNG colour type ", header.color_type, " with ", header.bit_depth,
        "-bit samples; expected 8-bit grey or a palette/RGB PNG in the VOC colour map");
  Image rgb = stb_decode(bytes, name, 3);
  Image labels(rgb.height, rgb.width, 1);
  Rgb last{0, 0, 0};
  int last_index = 0;  // black is index 0
  for (int y = 0; y < rgb.height; ++y) {
    const uint8_t* src = rgb.row(y);
    uint8_t* dst = labels.row(y);
    for (int x = 0; x < rgb.width; ++x) {
      Rgb c{src[3 * x], src[3 * x + 1], src[3 * x + 2]};
      if (c != last) {
        last = c;
        last_index = voc_color_index(c);
        check(last_index >= 0, "label map '", name, "': colour (", int{c[0]}, ",", int{c[1]}, ",", int{c[2]},
              ") at pixel (x=", x, ", y=", y, ") is not in the VOC colour map");
      }
      dst[x] = static_cast<uint8_t>(last_index);
    }
  }
  return labels;
}

Image read_label(const std::string& path) { return decode_label(read_file_bytes(path), path); }

ImageSize probe_image(const std::string& bytes, const std::string& name) {
  int w = 0, h = 0, c = 0;
  check(bytes.size() <= static_cast<size_t>(INT32_MAX), "'", name, "': file too large");
  // stb_image reads the headers of other formats too (PNM, GIF, ...), and reports 0x0 for some.
  check(is_jpeg(bytes) || is_png(bytes), "cannot read the header of '", name, "': not a JPEG or PNG file (",
        bytes.size(), " bytes)");
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                             &c)) {
    const char* reason = stbi_failure_reason();
    throw Error(cat("cannot read the header of '", name, "': ", reason ? reason : "unknown error"));
  }
  check(w > 0 && h > 0, "cannot read the header of '", name, "': it gives a ", w, "x", h, " image");
  return {h, w};
}

std::string encode_png(const Image& image) {
  check(image.channels == 1 || image.channels == 3, "encode_png: expected 1 or 3 channels, got ", image.channels);
  check(image.height > 0 && image.width > 0, "encode_png: empty image");
  std::string out;
  int ok = stbi_write_png_to_func(stb_append, &out, image.width, image.height, image.channels, image.pixels.data(),
                                  image.width * image.channels);
  check(ok != 0, "encode_png: stb_image_write failed for a ", image.width, "x", image.height, " image");
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  check(image.channels == 3, "encode_jpeg: expected 3 channels, got ", image.channels);
  check(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in 1..100, got ", quality);
  check(image.height > 0 && image.width > 0, "encode_jpeg: empty image");
  std::string out;
  int ok = stbi_write_jpg_to_func(stb_append, &out, image.width, image.height, 3, image.pixels.data(), quality);
  check(ok != 0, "encode_jpeg: stb_image_write failed for a ", image.width, "x", image.height, " image");
  return out;
}

std::string encode_voc_palette_png(const Image& labels) {
  check(labels.channels == 1, "encode_voc_palette_png: expected 1 channel, got ", labels.channels);
  check(labels.height > 0 && labels.width > 0, "encode_voc_palette_png: empty label map");
  std::string out(reinterpret_cast<const char*>(kPngSignature), 8);
  std::string ihdr;
  append_be32(ihdr, static_cast<uint32_t>(labels.width));
  append_be32(ihdr, static_cast<uint32_t>(labels.height));
  ihdr += std::string{char{8}, char{3}, char{0}, char{0}, char{0}};  // 8-bit, palette, deflate, filter 0, no interlace
  append_chunk(out, "IHDR", ihdr);
  std::string palette;
  for (const Rgb& c : voc_colormap()) palette.append(reinterpret_cast<const char*>(c.data()), 3);
  append_chunk(out, "PLTE", palette);

  // Scanlines, each with filter byte 0, in a zlib stream of stored blocks.
  std::string raw;
  raw.reserve(static_cast<size_t>(labels.height) * (labels.width + 1));
  for (int y = 0; y < labels.height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(labels.row(y)), static_cast<size_t>(labels.width));
  }
  std::string zlib = {char{0x78}, char{0x01}};
  constexpr size_t kMaxStored = 65535;
  for (size_t at = 0; at < raw.size(); at += kMaxStored) {
    size_t n = std::min(kMaxStored, raw.size() - at);
    zlib.push_back(at + n == raw.size() ? char{1} : char{0});
    zlib.push_back(static_cast<char>(n & 0xFF));
    zlib.push_back(static_cast<char>(n >> 8));
    zlib.push_back(static_cast<char>(~n & 0xFF));
    zlib.push_back(static_cast<char>((~n >> 8) & 0xFF));
    zlib.append(raw, at, n);
  }
  uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed data
  for (char ch : raw) {
    a = (a + static_cast<uint8_t>(ch)) % 65521;
    b = (b + a) % 65521;
  }
  append_be32(zlib, (b << 16) | a);
  append_chunk(out, "IDAT", zlib);
  append_chunk(out, "IEND", "");
  return out;
}

const std::array<Rgb, 256>& voc_colormap() {
  static const std::array<Rgb, 256> map = [] {
    std::array<Rgb, 256> m{};
    for (int i = 0; i < 256; ++i) {
      int r = 0, g = 0, b = 0, c = i;
      for (int j = 0; j < 8; ++j) {
        r |= ((c >> 0) & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
      }
      m[static_cast<size_t>(i)] = {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
    }
    return m;
  }();
  return map;
}

int voc_color_index(Rgb rgb) {
  // Bit 7-j of r, g, b holds bit 3j, 3j+1, 3j+2 of the index; an index has 8 bits, so only the top
  // three bits of each channel can be set.
  int index = 0;
  for (int j = 0; j < 3; ++j) {
    index |= ((rgb[0] >> (7 - j)) & 1) << (3 * j);
    index |= ((rgb[1] >> (7 - j)) & 1) << (3 * j + 1);
    index |= ((rgb[2] >> (7 - j)) & 1) << (3 * j + 2);
  }
  if (index > 255 || voc_colormap()[static_cast<size_t>(index)] != rgb) return -1;
  return index;
}

}  // namespace strata::data

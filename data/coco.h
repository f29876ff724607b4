// COCO 2017 instance annotations as semantic label maps (the COCO class-incremental protocol,
// issue 17): the reader of annotations/instances_<split>.json, the masks of its segmentations and
// the label maps built from them.
//
// Masks are pycocotools' `COCO.annToMask` bit for bit (its C core, common/maskApi.c, read for its
// semantics): a polygon list is each polygon's run-length encoding from rleFrPoly (vertices scaled
// by 5 and rounded, the boundary walked densely, its crossings of the pixel-column centres turned
// into runs) merged by union; a compressed RLE string is decoded as rleFrString (6 bits per
// character from '0', LEB128-like, counts after the third as differences from the count two
// before); an uncompressed RLE is the count list itself. Runs are column-major (down the first
// column, then the next), starting with a run of zeros. As pycocotools, a polygon list whose first
// polygon has 4 numbers or fewer is refused (pycocotools reads it as a box and fails); a later
// polygon of fewer than 3 points covers nothing.
//
// Label maps: background 0; category c -> 1 + its rank among the file's category ids sorted
// ascending (COCO's 80 thing categories -> 1..80 in COCO's own order); crowd regions (iscrowd = 1)
// 255. Drawing order, so that the result does not depend on the order of the file: crowd regions
// first, then the other instances from the largest mask area to the smallest (equal areas by
// ascending annotation id), each overwriting what is under it. Larger-first keeps small objects,
// which usually sit in front of large ones (a cup on a table, a person on a bed), visible where
// instance masks overlap; crowd regions first keep every labelled instance labelled.
//
// Reading streams the file through nlohmann-json's SAX interface: only images, categories and each
// annotation's ids and segmentation are kept (polygon vertices already scaled to pycocotools'
// integers, 4 bytes a coordinate), never the document.
//
// Errors (strata::Error naming the file, and the annotation id where one is at fault): a missing or
// unreadable file, malformed JSON (naming the byte), a missing "images"/"annotations"/"categories"
// array, an image without id, file_name, height or width, a repeated image or category id, an
// annotation whose image_id or category_id is not listed, a segmentation of unknown shape (not a
// polygon list or an RLE object with "counts" and "size"), an RLE whose size is not its image's or
// whose counts do not sum to height x width, a malformed RLE string, more than 254 categories.
#pragma once

#include <cstdint>
#include <istream>
#include <span>
#include <string>
#include <vector>

#include "data/image.h"

namespace strata::data {

// ---- run-length encoding (pycocotools' RLE) ------------------------------------------------------

// Counts of alternating runs (zeros first) of a height x width mask in column-major order.
using RleCounts = std::vector<uint32_t>;

// pycocotools' rleFrPoly: one polygon x0,y0,x1,y1,... (pixel coordinates; an odd trailing number is
// ignored) as the RLE of a height x width mask.
RleCounts rle_from_polygon(std::span<const double> xy, int height, int width);
// pycocotools' compressed string form (rleToString / rleFrString). A character outside '0'..'o'
// or a string ending inside a count throws naming `what`.
std::string rle_to_string(const RleCounts& counts);
RleCounts rle_from_string(const std::string& text, const std::string& what);
// A row-major 0/1 mask (height x width) and back; decoding checks that the counts sum to
// height x width and throws naming `what` otherwise.
RleCounts rle_encode(const std::vector<uint8_t>& mask, int height, int width);
std::vector<uint8_t> rle_decode(const RleCounts& counts, int height, int width, const std::string& what);

// ---- the annotation file -------------------------------------------------------------------------

struct CocoImage {
  int64_t id = -1;
  std::string file_name;
  int height = 0;
  int width = 0;
};

struct CocoCategory {
  int64_t id = -1;
  std::string name;
};

enum class SegmentationKind : uint8_t { polygons, rle_counts, rle_string };

struct CocoAnnotation {
  int64_t id = -1;
  int64_t image_id = -1;
  int64_t category_id = -1;
  bool crowd = false;
  SegmentationKind kind = SegmentationKind::polygons;
  // polygons: [number of polygons, points of each polygon..., then every x,y scaled as rleFrPoly
  // scales them: (int)(5 * v + 0.5)]; rle_counts: the counts.
  std::vector<int32_t> data;
  std::string rle;  // rle_string: the compressed counts
  int rle_height = 0, rle_width = 0;
};

struct CocoAnnotations {
  std::string file;                      // for messages
  std::vector<CocoImage> images;         // file order
  std::vector<CocoCategory> categories;  // sorted by id: label value = index + 1
  std::vector<CocoAnnotation> annotations;
  std::vector<std::vector<int64_t>> annotations_of_image;  // per image: indices into annotations

  // The label value of a category id (1..categories), or 0 when the id is not listed.
  int label_of(int64_t category_id) const;
};

// Streams `path` (see the file comment); checks every reference and every segmentation's shape.
CocoAnnotations read_coco_annotations(const std::string& path);
// The same from a stream (`file` names it in messages).
CocoAnnotations parse_coco_annotations(std::istream& in, const std::string& file);

// The mask of one annotation on its image (row-major, 0/1), as pycocotools' annToMask.
std::vector<uint8_t> annotation_mask(const CocoAnnotations& coco, const CocoAnnotation& annotation,
                                     const CocoImage& image);
// The semantic label map (H, W, 1) of image `index` by the rule of the file comment.
Image coco_label_map(const CocoAnnotations& coco, int64_t index);

// The 80 COCO thing categories in COCO's order (sorted category id), and their ids (1..90).
const std::vector<std::string>& coco_category_names();
const std::vector<int>& coco_category_ids();

}  // namespace strata::data

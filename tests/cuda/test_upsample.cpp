// upsample_bilinear on CUDA against the CPU reference, outputs and gradients (the backward is a
// gather on both backends), on the CPU tests' cases (tools/torchref/spatial.py: up, down,
// non-integer factors, 1x1 and 1xW inputs, 1x1 and 1xW outputs, same size) with both align_corners
// values; and the per-axis footprint the CUDA backward gathers over, against brute force.
#include <catch2/catch.hpp>

#include "engine/ops/upsample.h"
#include "kernels/common/upsample.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda upsample_bilinear matches the CPU up and down, with both align_corners", "[cpu]") {
  Generator g(51);
  struct Case {
    const char* name;
    Shape shape;  // NHWC
    int64_t out_h, out_w;
  };
  const std::vector<Case> cases = {
      {"up 7x5 to 65x97", {2, 7, 5, 3}, 65, 97},
      {"down 65x97 to 17x13", {2, 65, 97, 3}, 17, 13},
      {"up 33x17 to 513x257", {1, 33, 17, 3}, 513, 257},
      {"down 20x9 to 7x8", {1, 20, 9, 5}, 7, 8},
      {"in 1x1 to 5x7", {2, 1, 1, 3}, 5, 7},
      {"in 1x6 to 4x3", {2, 1, 6, 3}, 4, 3},
      {"out 9x8 to 1x1", {2, 9, 8, 3}, 1, 1},
      {"out 9x8 to 1x4", {1, 9, 8, 4}, 1, 4},
      {"same 6x7", {2, 6, 7, 3}, 6, 7},
      {"odd shape 7x5 to 13x11", {2, 7, 5, 13}, 13, 11},
      {"logits x8, 151 classes", {1, 8, 6, 151}, 64, 48},
  };
  for (const Case& c : cases) {
    for (bool align_corners : {false, true}) {
      INFO("align_corners " << align_corners);
      int64_t oh = c.out_h, ow = c.out_w;
      check_cuda_matches_cpu(
          c.name, [oh, ow, align_corners](const auto& in) { return upsample_bilinear(in[0], oh, ow, align_corners); },
          {random_leaf(c.shape, g)});
    }
  }
}

TEST_CASE("bilinear footprints are exactly the outputs whose taps touch each input", "[cpu]") {
  namespace cm = kernels::common;
  for (int64_t in : {1, 2, 3, 7, 33, 65, 97}) {
    for (int64_t out : {1, 2, 4, 5, 13, 17, 64, 97, 257, 513}) {
      for (bool align_corners : {false, true}) {
        INFO("in " << in << ", out " << out << ", align_corners " << align_corners);
        float scale = cm::bilinear_scale<float>(in, out, align_corners);
        for (int64_t i = 0; i < in; ++i) {
          int64_t first = out, last = 0;
          for (int64_t o = 0; o < out; ++o) {
            cm::BilinearTaps<float> t = cm::bilinear_taps<float>(scale, o, in, align_corners);
            if (t.i0 == i || t.i1 == i) {
              first = std::min(first, o);
              last = std::max(last, o + 1);
            }
          }
          if (first >= last) first = last = -1;
          cm::BilinearRange r = cm::bilinear_footprint<float>(scale, i, in, out, align_corners);
          bool empty = r.first >= r.last;
          CHECK(empty == (first < 0));
          if (!empty) {
            CHECK(r.first == first);
            CHECK(r.last == last);
          }
        }
      }
    }
  }
}

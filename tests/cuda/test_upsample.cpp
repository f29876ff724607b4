// upsample_bilinear on CUDA against the CPU reference, outputs and gradients (the backward is a
// gather on both backends), on every case of its table (tests/engine/upsample_cases.h) and on large
// factors spanning many blocks, with both align_corners values; and the per-axis footprint the CUDA
// backward gathers over, against brute force.
#include <catch2/catch.hpp>

#include "engine/ops/upsample.h"
#include "kernels/common/upsample.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/upsample_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;

TEST_CASE("cuda upsample_bilinear matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::upsample_cases());
}

TEST_CASE("cuda upsample_bilinear matches the CPU on large factors and many blocks", "[cpu]") {
  check_cuda_matches_cpu(test::upsample_cases({{"down 65x97 to 17x13", {2, 65, 97, 3}, 17, 13},
                                               {"up 33x17 to 513x257", {1, 33, 17, 3}, 513, 257},
                                               {"logits x8, 151 classes", {1, 8, 6, 151}, 64, 48}},
                                              450));
}

TEST_CASE("cuda upsample_nearest matches the CPU on every case of its table and on many blocks", "[cpu]") {
  check_cuda_matches_cpu(test::upsample_nearest_cases());
  check_cuda_matches_cpu(test::upsample_nearest_cases(
      {{"up 33x17 to 513x257", {1, 33, 17, 3}, 513, 257}, {"logits, 151 classes", {1, 8, 6, 151}, 17, 13}}, 490));
}

TEST_CASE("nearest footprints are exactly the outputs that copy each input", "[cpu]") {
  namespace cm = kernels::common;
  for (int64_t in : {1, 2, 3, 5, 7, 33, 65, 97}) {
    for (int64_t out : {1, 2, 4, 5, 7, 13, 17, 64, 97, 257, 513}) {
      INFO("in " << in << ", out " << out);
      for (int64_t i = 0; i < in; ++i) {
        int64_t first = out, last = 0;
        for (int64_t o = 0; o < out; ++o) {
          if (cm::nearest_source_index(o, in, out) == i) {
            first = std::min(first, o);
            last = std::max(last, o + 1);
          }
        }
        cm::BilinearRange r = cm::nearest_footprint(i, in, out);
        if (first >= last) {
          CHECK(r.first >= r.last);
        } else {
          CHECK(r.first == first);
          CHECK(r.last == last);
        }
      }
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

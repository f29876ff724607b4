// Philox4x32-10 against the known-answer vectors published with Random123 (kat_vectors), and the
// properties strata relies on: draws depend only on (seed, index), distributions are right.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/common/philox.h"

using strata::philox::Block;
using strata::philox::philox4x32_10;

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors", "[cpu]") {
  Block zero = philox4x32_10(Block{{0, 0, 0, 0}}, 0, 0);
  CHECK(zero.v[0] == 0x6627e8d5u);
  CHECK(zero.v[1] == 0xe169c58du);
  CHECK(zero.v[2] == 0xbc57ac4cu);
  CHECK(zero.v[3] == 0x9b00dbd8u);

  Block ones = philox4x32_10(Block{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  CHECK(ones.v[0] == 0x408f276du);
  CHECK(ones.v[1] == 0x41c83b0eu);
  CHECK(ones.v[2] == 0xa20bc7c6u);
  CHECK(ones.v[3] == 0x6d5451fdu);

  Block pi = philox4x32_10(Block{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  CHECK(pi.v[0] == 0xd16cfe09u);
  CHECK(pi.v[1] == 0x94fdccebu);
  CHECK(pi.v[2] == 0x5001e420u);
  CHECK(pi.v[3] == 0x24126ea1u);
}

TEST_CASE("philox draws are a pure function of seed, index and stream", "[cpu]") {
  CHECK(strata::philox::word(7, 12345) == strata::philox::word(7, 12345));
  CHECK(strata::philox::word(7, 12345) != strata::philox::word(8, 12345));
  CHECK(strata::philox::word(7, 12345, 0) != strata::philox::word(7, 12345, 1));
  CHECK(strata::philox::normal(3, 99) == strata::philox::normal(3, 99));
}

TEST_CASE("philox uniform and normal have the right moments", "[cpu]") {
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    double u = strata::philox::uniform(42, static_cast<uint64_t>(i));
    double z = strata::philox::normal(42, static_cast<uint64_t>(i));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    su += u;
    su2 += u * u;
    sn += z;
    sn2 += z * z;
  }
  // Standard errors: uniform mean 0.5 +- 0.00065, normal mean 0 +- 0.0022, variance 1 +- 0.0032.
  CHECK(std::fabs(su / n - 0.5) < 0.004);
  CHECK(std::fabs(su2 / n - su / n * su / n - 1.0 / 12) < 0.002);
  CHECK(std::fabs(sn / n) < 0.012);
  CHECK(std::fabs(sn2 / n - 1.0) < 0.02);
}

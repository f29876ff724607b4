// Philox4x32-10: a counter-based random number generator (Salmon, Moraes, Dror, Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011; constants from Random123).
// A draw is a pure function of (key, counter): CPU and CUDA produce the same numbers for the same
// seed and offset without sharing state, so dropout masks and augmentations are reproducible on
// every backend and with any number of threads.
//
//   key     = the 64-bit seed, split into two 32-bit words
//   counter = 128 bits: (offset of the 4-word block, stream id)
//   output  = 4 independent 32-bit words per counter value
// Streams in use: 0 random tensors (one block per element), 1 dropout masks (one word per element).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::philox {

struct Block { uint32_t v[4]; };

STRATA_HOST_DEVICE inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of the Philox4x32 bijection keyed by (k0, k1).
STRATA_HOST_DEVICE inline Block philox4x32_10(Block ctr, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, ctr.v[0], hi0, lo0);
    mulhilo(kMul1, ctr.v[2], hi1, lo1);
    ctr = Block{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return ctr;
}

// The 4 words at position `block_index` of stream `stream` for seed `seed`.
STRATA_HOST_DEVICE inline Block draw(uint64_t seed, uint64_t block_index, uint64_t stream = 0) {
  Block ctr{{static_cast<uint32_t>(block_index), static_cast<uint32_t>(block_index >> 32),
             static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Element i of the stream: word i % 4 of block i / 4.
STRATA_HOST_DEVICE inline uint32_t word(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  return draw(seed, index / 4, stream).v[index % 4];
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float).
STRATA_HOST_DEVICE inline float to_unit_float(uint32_t w) {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

// Uniform in [0, 1) with 53 random bits, from two words.
STRATA_HOST_DEVICE inline double to_unit_double(uint32_t hi, uint32_t lo) {
  uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller from the two unit values (u1 in (0,1], u2 in [0,1)).
STRATA_HOST_DEVICE inline double box_muller(double u1, double u2) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

// Normal element i of the stream: each element owns a whole block, so the value of element i does
// not depend on how many elements are drawn (a tensor of any shape gets the same prefix).
STRATA_HOST_DEVICE inline double normal(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  Block b = draw(seed, index, stream);
  double u1 = 1.0 - to_unit_double(b.v[0], b.v[1]);  // (0, 1]: log is finite
  double u2 = to_unit_double(b.v[2], b.v[3]);
  return box_muller(u1, u2);
}

// Uniform element i in [0, 1), one block per element for the same prefix property.
STRATA_HOST_DEVICE inline double uniform(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  Block b = draw(seed, index, stream);
  return to_unit_double(b.v[0], b.v[1]);
}

}  // namespace strata::philox

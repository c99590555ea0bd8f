// The counter-based generator of dropout masks: the bits of counter c under a seed are a
// hash of (seed, c) alone, so a mask does not depend on threads, blocking or the device.
// Matches nnfast/backends/numpy_backend.py's dropout_bits.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace nnfast {

// splitmix64's output function (shifts 30, 27, 31).
NNFAST_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// key = splitmix64_mix(seed); all arithmetic mod 2^64.
NNFAST_HOST_DEVICE inline uint64_t counter_bits(uint64_t key, uint64_t counter) {
  return splitmix64_mix(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

}  // namespace nnfast

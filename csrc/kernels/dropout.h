// Inverted dropout, forward and backward side by side. The mask comes from a counter-based
// hash (splitmix64's finalizer): element i of a call is kept or dropped by a hash of
// (seed, offset + i) alone, so the mask is the same on any thread count and in every
// backend (nnfast/backends/numpy_backend.py, dropout_bits).
#pragma once

#include <cstdint>

#include "common/splitmix64.h"

namespace nnfast {

struct DropoutOptions {
  uint64_t seed = 0, offset = 0;
  uint64_t threshold = 0;  // dropped when (bits >> 32) < threshold = floor(p * 2^32)
  double scale = 1.0;      // 1 / (1 - p), rounded to T once
};

// x (n), out (n), mask (n) uint8: mask = kept, out = kept ? x * scale : 0. out may be x.
template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n, const DropoutOptions& opt);

// dx (n), dout (n), mask (n): dx = mask ? dout * scale : 0. dx may be dout.
template <typename T>
void dropout_backward(T* dx, const T* dout, const uint8_t* mask, int64_t n, double scale);

}  // namespace nnfast

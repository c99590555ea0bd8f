// Inverted dropout with a counter-based mask, forward and backward side by side. Element i of
// a call with (seed, offset) is dropped by a hash of (seed, offset + i) alone, so the mask is
// the same on any thread count, blocking or backend (numpy_backend.dropout_bits documents it).
#pragma once

#include <cstdint>

namespace nnfast {

// inp (n), out (n), mask (n): mask = keep; out = keep ? inp * T(1 / (1 - p)) : 0. out may be
// inp. Element i is dropped when (bits(offset + i) >> 32) < floor(p * 2^32), where
// bits(c) = mix(mix(seed) + (c + 1) * 0x9E3779B97F4A7C15) and mix is splitmix64's finalizer.
template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* inp, int64_t n, double p, uint64_t seed,
                     uint64_t offset);

// dinp (n), dout (n), mask (n): dinp = mask ? dout * T(1 / (1 - p)) : 0. dinp may be dout.
template <typename T>
void dropout_backward(T* dinp, const T* dout, const uint8_t* mask, int64_t n, double p);

}  // namespace nnfast

// Inverted dropout on device pointers, forward and backward side by side, with the masks of
// the NumPy reference: element i is dropped when (counter_bits(mix(seed), offset + i) >> 32)
// < threshold, threshold = floor(p 2^32); kept elements are multiplied by scale = 1 / (1 - p).
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// out (n), mask uint8 (n) set to 1 where kept, x (n)
template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n, uint64_t threshold, T scale,
                     uint64_t seed, uint64_t offset);

// dinp (n), dout (n), mask (n): dinp = dout * scale where kept, else 0
template <typename T>
void dropout_backward(T* dinp, const T* dout, const uint8_t* mask, int64_t n, T scale);

}  // namespace nnfast::gpu

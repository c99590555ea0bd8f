#include "kernels/dropout.h"

#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

struct DropoutMaskStream {
  uint64_t key;        // mix(seed)
  uint64_t offset;     // the counter of element 0
  uint64_t threshold;  // floor(p * 2^32)
};

inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The scale of kept elements: 1 / (1 - p) in double, rounded once to T, as the reference.
template <typename T>
T keep_scale(double p) {
  return static_cast<T>(1.0 / (1.0 - p));
}

// Elements [begin, end) of one call; the counter wraps modulo 2^64 as uint64_t arithmetic does.
template <typename T>
NNFAST_SIMD_CLONES void dropout_forward_range(T* out, uint8_t* mask, const T* inp,
                                              int64_t begin, int64_t end,
                                              DropoutMaskStream stream, T scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint64_t counter = stream.offset + static_cast<uint64_t>(i) + 1;
    const uint64_t bits = splitmix64_mix(stream.key + counter * kGoldenGamma);
    const bool keep = (bits >> 32) >= stream.threshold;
    mask[i] = keep;
    out[i] = keep ? inp[i] * scale : T(0);
  }
}

template <typename T>
NNFAST_SIMD_CLONES void dropout_backward_range(T* dinp, const T* dout, const uint8_t* mask,
                                               int64_t begin, int64_t end, T scale) {
  for (int64_t i = begin; i < end; ++i) dinp[i] = mask[i] ? dout[i] * scale : T(0);
}

DropoutMaskStream mask_stream(double p, uint64_t seed, uint64_t offset) {
  // p < 1, so p * 2^32 < 2^32 and the truncation is the reference's int(p * 4294967296.0).
  return {splitmix64_mix(seed), offset, static_cast<uint64_t>(p * 4294967296.0)};
}

}  // namespace

template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* inp, int64_t n, double p, uint64_t seed,
                     uint64_t offset) {
  const DropoutMaskStream stream = mask_stream(p, seed, offset);
  const T scale = keep_scale<T>(p);
  parallel_ranges(n, threads_for(n, kMinCostlyElementsPerThread), [&](int64_t b, int64_t e) {
    dropout_forward_range(out, mask, inp, b, e, stream, scale);
  });
}

template <typename T>
void dropout_backward(T* dinp, const T* dout, const uint8_t* mask, int64_t n, double p) {
  const T scale = keep_scale<T>(p);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    dropout_backward_range(dinp, dout, mask, b, e, scale);
  });
}

template void dropout_forward<float>(float*, uint8_t*, const float*, int64_t, double, uint64_t,
                                     uint64_t);
template void dropout_forward<double>(double*, uint8_t*, const double*, int64_t, double,
                                      uint64_t, uint64_t);
template void dropout_backward<float>(float*, const float*, const uint8_t*, int64_t, double);
template void dropout_backward<double>(double*, const double*, const uint8_t*, int64_t, double);

}  // namespace nnfast

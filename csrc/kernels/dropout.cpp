#include "kernels/dropout.h"

#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

template <typename T>
NNFAST_SIMD_CLONES void dropout_range(T* out, uint8_t* mask, const T* x, int64_t begin,
                                      int64_t end, uint64_t key, uint64_t offset,
                                      uint64_t threshold, T scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint64_t counter = offset + static_cast<uint64_t>(i);  // wraps mod 2^64, as specified
    const uint64_t bits = counter_bits(key, counter);
    const bool keep = (bits >> 32) >= threshold;
    const T scaled = x[i] * scale;
    mask[i] = keep;
    out[i] = keep ? scaled : T(0);
  }
}

template <typename T>
NNFAST_SIMD_CLONES void dropout_backward_range(T* dx, const T* dout, const uint8_t* mask,
                                               int64_t begin, int64_t end, T scale) {
  for (int64_t i = begin; i < end; ++i) {
    const T scaled = dout[i] * scale;
    dx[i] = mask[i] != 0 ? scaled : T(0);
  }
}

}  // namespace

template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n, const DropoutOptions& opt) {
  const uint64_t key = splitmix64_mix(opt.seed);
  const T scale = static_cast<T>(opt.scale);
  parallel_ranges(n, threads_for(n, kMinCostlyElementsPerThread), [&](int64_t b, int64_t e) {
    dropout_range(out, mask, x, b, e, key, opt.offset, opt.threshold, scale);
  });
}

template <typename T>
void dropout_backward(T* dx, const T* dout, const uint8_t* mask, int64_t n, double scale) {
  const T s = static_cast<T>(scale);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { dropout_backward_range(dx, dout, mask, b, e, s); });
}

template void dropout_forward<float>(float*, uint8_t*, const float*, int64_t,
                                     const DropoutOptions&);
template void dropout_forward<double>(double*, uint8_t*, const double*, int64_t,
                                      const DropoutOptions&);
template void dropout_backward<float>(float*, const float*, const uint8_t*, int64_t, double);
template void dropout_backward<double>(double*, const double*, const uint8_t*, int64_t, double);

}  // namespace nnfast

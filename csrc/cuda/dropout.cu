#include "cuda/dropout.h"

#include "common/splitmix64.h"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

template <typename T>
__global__ void dropout_forward_kernel(T* out, uint8_t* mask, const T* x, int64_t n,
                                       uint64_t threshold, T scale, uint64_t key,
                                       uint64_t offset) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const bool keep = (counter_bits(key, offset + static_cast<uint64_t>(i)) >> 32) >= threshold;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? x[i] * scale : T(0);
  }
}

template <typename T>
__global__ void dropout_backward_kernel(T* dinp, const T* dout, const uint8_t* mask, int64_t n,
                                        T scale) {
  NNFAST_GRID_STRIDE_LOOP(i, n) dinp[i] = mask[i] ? dout[i] * scale : T(0);
}

}  // namespace

template <typename T>
void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n, uint64_t threshold, T scale,
                     uint64_t seed, uint64_t offset) {
  if (n <= 0) return;
  dropout_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      out, mask, x, n, threshold, scale, splitmix64_mix(seed), offset);
  check_launch("dropout_forward");
}

template <typename T>
void dropout_backward(T* dinp, const T* dout, const uint8_t* mask, int64_t n, T scale) {
  if (n <= 0) return;
  dropout_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dinp, dout, mask, n, scale);
  check_launch("dropout_backward");
}

template void dropout_forward<float>(float*, uint8_t*, const float*, int64_t, uint64_t, float,
                                     uint64_t, uint64_t);
template void dropout_forward<double>(double*, uint8_t*, const double*, int64_t, uint64_t,
                                      double, uint64_t, uint64_t);
template void dropout_backward<float>(float*, const float*, const uint8_t*, int64_t, float);
template void dropout_backward<double>(double*, const double*, const uint8_t*, int64_t, double);

}  // namespace nnfast::gpu

#include "cuda/activations.h"

#include <cmath>

#include "cuda/activation_device.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

template <typename T>
__global__ void activation_forward_kernel(T* out, const T* inp, int64_t n, Activation act,
                                          T negative_slope) {
  NNFAST_GRID_STRIDE_LOOP(i, n) out[i] = activate_device(act, inp[i], negative_slope);
}

template <typename T>
__global__ void activation_backward_kernel(T* dinp, const T* dout, const T* inp, const T* out,
                                           int64_t n, Activation act, T negative_slope) {
  NNFAST_GRID_STRIDE_LOOP(i, n)
    dinp[i] = dout[i] * activate_grad_device(act, inp[i], out[i], negative_slope);
}

// One thread per row: the rows here are class scores, a few to a few hundred wide.
template <typename T>
__global__ void softmax_forward_kernel(T* out, const T* inp, int64_t N, int64_t C) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* x = inp + row * C;
    T* y = out + row * C;
    T max = x[0];
    for (int64_t j = 1; j < C; ++j) max = x[j] > max ? x[j] : max;
    T sum = T(0);
    for (int64_t j = 0; j < C; ++j) {
      y[j] = std::exp(x[j] - max);
      sum += y[j];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < C; ++j) y[j] *= inv;
  }
}

template <typename T>
__global__ void softmax_backward_kernel(T* dinp, const T* dout, const T* out, int64_t N,
                                        int64_t C) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* g = dout + row * C;
    const T* y = out + row * C;
    T* dx = dinp + row * C;
    T dot = T(0);
    for (int64_t j = 0; j < C; ++j) dot += g[j] * y[j];
    for (int64_t j = 0; j < C; ++j) dx[j] = y[j] * (g[j] - dot);
  }
}

}  // namespace

template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope) {
  if (n <= 0) return;
  activation_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(out, inp, n, act, negative_slope);
  check_launch("activation_forward");
}

template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope) {
  if (n <= 0) return;
  activation_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dinp, dout, inp, out, n,
                                                                     act, negative_slope);
  check_launch("activation_backward");
}

template <typename T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return;
  softmax_forward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(out, inp, N, C);
  check_launch("softmax_forward");
}

template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return;
  softmax_backward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(dinp, dout, out, N, C);
  check_launch("softmax_backward");
}

NNFAST_INSTANTIATE_ACTIVATIONS(float)
NNFAST_INSTANTIATE_ACTIVATIONS(double)

}  // namespace nnfast::gpu

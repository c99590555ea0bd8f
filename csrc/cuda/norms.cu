#include "cuda/norms.h"

#include <cmath>

#include "cuda/block_sum.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

// term i of sum x^2, x (n)
template <typename T>
struct SquareTerm {
  const T* x;
  __device__ double operator()(int64_t i) const {
    const double v = x[i];
    return v * v;
  }
};

// term i of sum |x|, x (n)
template <typename T>
struct AbsTerm {
  const T* x;
  __device__ double operator()(int64_t i) const { return std::fabs(static_cast<double>(x[i])); }
};

// x (n)
template <typename T>
__global__ void scale_kernel(T* x, int64_t n, T alpha) {
  NNFAST_GRID_STRIDE_LOOP(i, n) x[i] *= alpha;
}

// x (n)
template <typename T>
__global__ void clip_kernel(T* x, int64_t n, T lo, T hi) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T v = x[i];
    x[i] = v < lo ? lo : (v > hi ? hi : v);  // comparisons with NaN are false: NaN stays
  }
}

// grad (n), w (n)
template <typename T>
__global__ void weight_penalty_backward_kernel(T* grad, const T* w, int64_t n, T l1, T l2x2) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T v = w[i];
    const T sign = static_cast<T>(v > T(0)) - static_cast<T>(v < T(0));
    const T s = v != v ? v : sign;  // numpy.sign(NaN) is NaN
    grad[i] += l1 * s + l2x2 * v;
  }
}

}  // namespace

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return sum_to_host(n, SquareTerm<T>{x}, "sum_squares");
}

template <typename T>
double sum_abs(const T* x, int64_t n) {
  return sum_to_host(n, AbsTerm<T>{x}, "sum_abs");
}

template <typename T>
void scale_inplace(T* x, int64_t n, T alpha) {
  if (n <= 0) return;
  scale_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(x, n, alpha);
  check_launch("scale_inplace");
}

template <typename T>
void clip_inplace(T* x, int64_t n, T lo, T hi) {
  if (n <= 0) return;
  clip_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(x, n, lo, hi);
  check_launch("clip_inplace");
}

template <typename T>
void weight_penalty_backward(T* grad, const T* w, int64_t n, T l1, T l2x2) {
  if (n <= 0) return;
  weight_penalty_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(grad, w, n, l1, l2x2);
  check_launch("weight_penalty_backward");
}

NNFAST_INSTANTIATE_NORMS(float)
NNFAST_INSTANTIATE_NORMS(double)

}  // namespace nnfast::gpu

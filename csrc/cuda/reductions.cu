#include "cuda/reductions.h"

#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

// Thread t of a block sums elements t, t + kThreadsPerBlock, ... in order; then the
// partial sums meet in a shared-memory tree of fixed shape. Returns the total in thread 0.
template <typename T, typename Load>
__device__ T block_sum(int64_t n, Load load) {
  __shared__ T partial[kThreadsPerBlock];
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < n; i += kThreadsPerBlock) acc += load(i);
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int width = kThreadsPerBlock / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  return partial[0];
}

__global__ void __launch_bounds__(kThreadsPerBlock)
    sum_kernel(double* out, const double* x, int64_t n) {
  const double total = block_sum<double>(n, [=](int64_t i) { return x[i]; });
  if (threadIdx.x == 0) out[0] = total;
}

template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    bias_grad_kernel(T* out, const T* grad, int64_t N, int64_t C, T beta) {
  for (int64_t j = blockIdx.x; j < C; j += gridDim.x) {
    const T total = block_sum<T>(N, [=](int64_t i) { return grad[i * C + j]; });
    if (threadIdx.x == 0) out[j] = beta != T(0) ? total + beta * out[j] : total;
    __syncthreads();  // the next column reuses the shared partial sums
  }
}

}  // namespace

void sum(double* out, const double* x, int64_t n) {
  sum_kernel<<<1, kThreadsPerBlock>>>(out, x, n);
  check_launch("sum");
}

template <typename T>
void bias_grad(T* out, const T* grad, int64_t N, int64_t C, T beta) {
  if (C <= 0) return;
  const int blocks = static_cast<int>(C < kMaxBlocks ? C : kMaxBlocks);
  bias_grad_kernel<T><<<blocks, kThreadsPerBlock>>>(out, grad, N, C, beta);
  check_launch("bias_grad");
}

template void bias_grad<float>(float*, const float*, int64_t, int64_t, float);
template void bias_grad<double>(double*, const double*, int64_t, int64_t, double);

}  // namespace nnfast::gpu

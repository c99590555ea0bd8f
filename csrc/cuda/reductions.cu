#include "cuda/reductions.h"

#include "cuda/block_sum.cuh"
#include "cuda/device_buffer.h"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    bias_grad_kernel(T* out, const T* grad, int64_t N, int64_t C, T beta) {
  for (int64_t j = blockIdx.x; j < C; j += gridDim.x) {
    const T total = block_sum<T>(N, [=](int64_t i) { return grad[i * C + j]; });
    if (threadIdx.x == 0) out[j] = beta != T(0) ? total + beta * out[j] : total;
  }
}

}  // namespace

double* host_sum_slot() {
  thread_local DeviceBuffer<double> slot;
  return slot.reserve(1);
}

double read_host_sum_slot() {
  double value = 0.0;
  check(cudaMemcpy(&value, host_sum_slot(), sizeof value, cudaMemcpyDeviceToHost),
        "cudaMemcpy of a sum to the host");
  return value;
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

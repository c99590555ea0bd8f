// Deterministic sums for CUDA kernels: every sum is split in a fixed way that does not
// depend on the GPU, so a run gives bitwise the same result on any device. Sums the host
// needs (losses, norms, counts) come back through sum_to_host.
#pragma once

#include <cstdint>

#include "cuda/launch.cuh"

namespace nnfast::gpu {

// sum over i in [0, n) of term(i), in a block of kThreadsPerBlock threads that all call it:
// thread t sums terms t, t + kThreadsPerBlock, ... in order, then the partial sums meet in
// a shared-memory tree of fixed shape. Every thread gets the total.
template <typename T, typename Term>
__device__ T block_sum(int64_t n, const Term& term) {
  __shared__ T partial[kThreadsPerBlock];
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < n; i += kThreadsPerBlock) acc += term(i);
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int width = kThreadsPerBlock / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  const T total = partial[0];
  __syncthreads();  // a next call may overwrite the partial sums only once all have read them
  return total;
}

// The device double a sum for the host is written to, one per host thread: the kernel
// table's functions are static, and trainers on different threads may step at once.
double* host_sum_slot();
// Waits for the kernel that wrote this thread's slot, and returns its value.
double read_host_sum_slot();

template <typename Term>
__global__ void __launch_bounds__(kThreadsPerBlock) sum_terms_kernel(double* out, int64_t n,
                                                                      Term term) {
  const double total = block_sum<double>(n, term);
  if (threadIdx.x == 0) *out = total;
}

// sum over i in [0, n) of term(i) (a double), in block_sum's order, returned on the host.
// One block: these sums run over one batch or one parameter array, and the host waits for
// the result, so the launch and the copy back cost more than the spread over blocks saves.
template <typename Term>
double sum_to_host(int64_t n, const Term& term, const char* kernel) {
  double* slot = host_sum_slot();
  sum_terms_kernel<Term><<<1, kThreadsPerBlock>>>(slot, n, term);
  check_launch(kernel);
  return read_host_sum_slot();
}

}  // namespace nnfast::gpu

// Error checks after every CUDA call and launch, and the launch geometry of grid-stride loops.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/errors.h"

namespace nnfast::gpu {

// Throws CudaError naming `what` unless status is cudaSuccess. Clears the runtime's
// last-error slot first, so a reported error does not resurface at the next check.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  throw CudaError(std::string(what) + " failed: " + cudaGetErrorName(status) + ": " +
                  cudaGetErrorString(status));
}

// After a kernel launch: a bad configuration or an earlier asynchronous fault.
inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), (std::string("launching ") + kernel).c_str());
}

constexpr int kThreadsPerBlock = 256;
// Grid-stride loops cover any n, so the grid never needs more blocks than this.
constexpr int64_t kMaxBlocks = 4096;

inline int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// for (i = global thread index; i < n; i += total threads), in int64 so no index overflows.
#define NNFAST_GRID_STRIDE_LOOP(i, n)                                                   \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace nnfast::gpu

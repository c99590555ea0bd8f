// Deterministic reductions on device pointers (cuda/block_sum.cuh's fixed order), so a run
// gives bitwise the same result on any device.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// out (C), grad (N, C): out = column sums of grad + beta * out (out is not read when beta
// is 0). One block per column.
template <typename T>
void bias_grad(T* out, const T* grad, int64_t N, int64_t C, T beta);

}  // namespace nnfast::gpu

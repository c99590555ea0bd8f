// Deterministic reductions on device pointers: every sum is split in a fixed way that does
// not depend on the GPU, so a run gives bitwise the same result on any device.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// out (1), x (n): out[0] = sum of x, by one block in a fixed order.
void sum(double* out, const double* x, int64_t n);

// out (C), grad (N, C): out = column sums of grad + beta * out (out is not read when beta
// is 0). One block per column.
template <typename T>
void bias_grad(T* out, const T* grad, int64_t N, int64_t C, T beta);

}  // namespace nnfast::gpu

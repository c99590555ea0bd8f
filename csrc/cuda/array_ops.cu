#include "cuda/array_ops.h"

#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

// out (batch, cols), X (rows, cols), idx (batch)
template <typename T>
__global__ void gather_rows_kernel(T* out, const T* X, const int64_t* idx, int64_t batch,
                                   int64_t cols) {
  NNFAST_GRID_STRIDE_LOOP(i, batch * cols) out[i] = X[idx[i / cols] * cols + i % cols];
}

// out (n), a (n), b (n)
template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t n) {
  NNFAST_GRID_STRIDE_LOOP(i, n) out[i] = a[i] + b[i];
}

}  // namespace

template <typename T>
void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols) {
  if (batch <= 0 || cols <= 0) return;
  gather_rows_kernel<T><<<blocks_for(batch * cols), kThreadsPerBlock>>>(out, X, idx, batch, cols);
  check_launch("gather_rows");
}

// Asynchronous on the default stream, ordered with the kernels around it.
template <typename T>
void copy(T* dst, const T* src, int64_t n) {
  if (n <= 0) return;
  check(cudaMemcpyAsync(dst, src, sizeof(T) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice),
        "cudaMemcpyAsync on the device");
}

template <typename T>
void fill_zero(T* x, int64_t n) {
  if (n <= 0) return;
  check(cudaMemsetAsync(x, 0, sizeof(T) * static_cast<size_t>(n)), "cudaMemsetAsync");
}

template <typename T>
void add(T* out, const T* a, const T* b, int64_t n) {
  if (n <= 0) return;
  add_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(out, a, b, n);
  check_launch("add");
}

template void gather_rows<float>(float*, const float*, const int64_t*, int64_t, int64_t);
template void gather_rows<double>(double*, const double*, const int64_t*, int64_t, int64_t);
template void gather_rows<int64_t>(int64_t*, const int64_t*, const int64_t*, int64_t, int64_t);
#define NNFAST_INSTANTIATE(T)                              \
  template void copy<T>(T*, const T*, int64_t);            \
  template void fill_zero<T>(T*, int64_t);                 \
  template void add<T>(T*, const T*, const T*, int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::gpu

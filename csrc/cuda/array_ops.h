// The data movement of a training step on device pointers: gathering a batch, copies,
// zeroing and sums of two arrays.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// out (batch, cols) = rows idx (batch) of X (rows, cols); idx in [0, rows), checked by the
// caller.
template <typename T>
void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols);

// dst (n) = src (n)
template <typename T>
void copy(T* dst, const T* src, int64_t n);

// x (n) = 0
template <typename T>
void fill_zero(T* x, int64_t n);

// out (n) = a (n) + b (n); out may be a or b.
template <typename T>
void add(T* out, const T* a, const T* b, int64_t n);

}  // namespace nnfast::gpu

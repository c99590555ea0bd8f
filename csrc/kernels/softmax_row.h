// Softmax over the rows of a block, shared by the softmax activation and
// softmax-cross-entropy so both produce the same probabilities. Blocks rather than single
// rows: with 10 classes a row is shorter than one AVX-512 vector, so the exps run as one
// long loop over the whole block.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/vector_math.h"

namespace nnfast {

// Rows per block: a few thousand values, and the per-row arrays below stay on the stack.
constexpr int64_t kSoftmaxBlockRows = 64;
inline int64_t softmax_block_rows(int64_t C) {
  return std::clamp<int64_t>(4096 / std::max<int64_t>(C, 1), 1, kSoftmaxBlockRows);
}

// x (C)
template <typename T>
inline T row_max(const T* x, int64_t C) {
  T max = x[0];
  for (int64_t j = 1; j < C; ++j) max = x[j] > max ? x[j] : max;
  return max;
}

// x (R, C), y (R, C), max (R) the row maxima, sums (R): y = softmax(x) row by row, and
// sums[r] = sum_j exp(x[r, j] - max[r]) (float32 rows sum in double). Reads a row of x
// before writing that row of y, so y may be x.
template <typename T>
inline void softmax_block(T* y, const T* x, int64_t R, int64_t C, const T* max, double* sums) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < C; ++j) y[r * C + j] = x[r * C + j] - max[r];
  for (int64_t i = 0; i < R * C; ++i) y[i] = exp_vec(y[i]);
  for (int64_t r = 0; r < R; ++r) {
    T* row = y + r * C;
    double sum = 0.0;
    for (int64_t j = 0; j < C; ++j) sum += row[j];
    sums[r] = sum;
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t j = 0; j < C; ++j) row[j] *= inv;
  }
}

}  // namespace nnfast

// One row of a softmax, shared by the softmax activation and softmax-cross-entropy so both
// produce the same probabilities.
#pragma once

#include <cstdint>

#include "common/vector_math.h"

namespace nnfast {

// x (C)
template <typename T>
inline T row_max(const T* x, int64_t C) {
  T max = x[0];
  for (int64_t j = 1; j < C; ++j) max = x[j] > max ? x[j] : max;
  return max;
}

// x (C), y (C): y = exp(x - max), returns the sum (float32 rows sum in double).
// Reads x[j] before writing y[j], so y may be x. Two loops: the exps vectorize, the
// in-order sum does not.
template <typename T>
inline double shifted_exp_row(T* y, const T* x, int64_t C, T max) {
  for (int64_t j = 0; j < C; ++j) y[j] = exp_vec(x[j] - max);
  double sum = 0.0;
  for (int64_t j = 0; j < C; ++j) sum += y[j];
  return sum;
}

// y (C): y /= sum
template <typename T>
inline void normalize_row(T* y, int64_t C, double sum) {
  const T inv = static_cast<T>(1.0 / sum);
  for (int64_t j = 0; j < C; ++j) y[j] *= inv;
}

}  // namespace nnfast

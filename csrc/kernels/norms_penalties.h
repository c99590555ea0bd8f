// The regularizers around an optimizer step: gradient norms and clipping (by global norm, by
// value) and L1/L2 weight penalties, forward and backward side by side. Sums to a scalar run
// in double over fixed chunks (common/deterministic_sum.h): the same bits on any thread count.
#pragma once

#include <cstdint>

namespace nnfast {

// x (n): sum(x^2), accumulated in double
template <typename T>
double sum_squares(const T* x, int64_t n);

// x (n): x *= T(alpha), in place
template <typename T>
void scale_inplace(T* x, int64_t n, double alpha);

// x (n): x = min(max(x, T(lo)), T(hi)) in place; NaN stays NaN
template <typename T>
void clip_inplace(T* x, int64_t n, double lo, double hi);

// w (n): l1 * sum|w| + l2 * sum(w^2), accumulated in double
template <typename T>
double weight_penalty_forward(const T* w, int64_t n, double l1, double l2);

// grad (n), w (n): grad += T(l1) * sign(w) + T(2 l2) * w, with sign(0) = 0
template <typename T>
void weight_penalty_backward(T* grad, const T* w, int64_t n, double l1, double l2);

}  // namespace nnfast

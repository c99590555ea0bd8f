#include "kernels/norms_penalties.h"

#include <cmath>

#include "common/deterministic_sum.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

// The reference's chunk (numpy_backend.SUM_CHUNK); any fixed size keeps thread invariance.
constexpr int64_t kElementsPerChunk = 4096;

template <typename T>
NNFAST_SIMD_CLONES double squares_sum(const T* x, int64_t b, int64_t e) {
  return sum_terms(b, e, [&](int64_t i) {
    const double v = x[i];
    return v * v;
  });
}

template <typename T>
NNFAST_SIMD_CLONES double abs_sum(const T* x, int64_t b, int64_t e) {
  return sum_terms(b, e, [&](int64_t i) { return std::fabs(static_cast<double>(x[i])); });
}

template <typename T>
NNFAST_SIMD_CLONES void scale_range(T* x, int64_t b, int64_t e, T alpha) {
  for (int64_t i = b; i < e; ++i) x[i] *= alpha;
}

template <typename T>
NNFAST_SIMD_CLONES void clip_range(T* x, int64_t b, int64_t e, T lo, T hi) {
  for (int64_t i = b; i < e; ++i) {
    const T v = x[i];  // comparisons with NaN are false: NaN passes through
    x[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

template <typename T>
NNFAST_SIMD_CLONES void penalty_grad_range(T* grad, const T* w, int64_t b, int64_t e, T l1,
                                           T two_l2) {
  for (int64_t i = b; i < e; ++i) {
    const T v = w[i];
    const T sign = v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
    grad[i] += l1 * sign + two_l2 * v;
  }
}

template <typename RangeSum>
double chunked_sum(int64_t n, RangeSum&& range_sum) {
  return deterministic_sum(n, kElementsPerChunk, threads_for(n, kMinCheapElementsPerThread),
                           range_sum);
}

}  // namespace

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return chunked_sum(n, [&](int64_t b, int64_t e) { return squares_sum(x, b, e); });
}

template <typename T>
void scale_inplace(T* x, int64_t n, double alpha) {
  const T a = static_cast<T>(alpha);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { scale_range(x, b, e, a); });
}

template <typename T>
void clip_inplace(T* x, int64_t n, double lo, double hi) {
  const T l = static_cast<T>(lo), h = static_cast<T>(hi);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { clip_range(x, b, e, l, h); });
}

template <typename T>
double weight_penalty_forward(const T* w, int64_t n, double l1, double l2) {
  const double abs_total = chunked_sum(n, [&](int64_t b, int64_t e) { return abs_sum(w, b, e); });
  const double sq_total = chunked_sum(n, [&](int64_t b, int64_t e) { return squares_sum(w, b, e); });
  return l1 * abs_total + l2 * sq_total;
}

template <typename T>
void weight_penalty_backward(T* grad, const T* w, int64_t n, double l1, double l2) {
  const T a = static_cast<T>(l1), b2 = static_cast<T>(2.0 * l2);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { penalty_grad_range(grad, w, b, e, a, b2); });
}

#define NNFAST_INSTANTIATE(T)                                                        \
  template double sum_squares<T>(const T*, int64_t);                                 \
  template void scale_inplace<T>(T*, int64_t, double);                               \
  template void clip_inplace<T>(T*, int64_t, double, double);                        \
  template double weight_penalty_forward<T>(const T*, int64_t, double, double);      \
  template void weight_penalty_backward<T>(T*, const T*, int64_t, double, double);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

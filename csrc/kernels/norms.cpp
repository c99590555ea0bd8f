#include "kernels/norms.h"

#include <cmath>

#include "common/deterministic_sum.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

// The reference's chunk (SUM_CHUNK in numpy_backend.py), as the smallest chunk.
constexpr int64_t kElementsPerChunk = 4096;

template <typename T>
NNFAST_SIMD_CLONES double squares_range(const T* x, int64_t b, int64_t e) {
  return sum_terms<double>(b, e, [&](int64_t i) {
    const double v = x[i];
    return v * v;
  });
}

template <typename T>
NNFAST_SIMD_CLONES double abs_range(const T* x, int64_t b, int64_t e) {
  return sum_terms<double>(b, e, [&](int64_t i) { return std::fabs(static_cast<double>(x[i])); });
}

template <typename T>
NNFAST_SIMD_CLONES void scale_range(T* x, int64_t b, int64_t e, T alpha) {
  for (int64_t i = b; i < e; ++i) x[i] *= alpha;
}

template <typename T>
NNFAST_SIMD_CLONES void clip_range(T* x, int64_t b, int64_t e, T lo, T hi) {
  for (int64_t i = b; i < e; ++i) {
    const T v = x[i];
    x[i] = v < lo ? lo : (v > hi ? hi : v);  // comparisons with NaN are false: NaN stays
  }
}

template <typename T>
NNFAST_SIMD_CLONES void penalty_grad_range(T* grad, const T* w, int64_t b, int64_t e, T l1,
                                           T l2x2) {
  for (int64_t i = b; i < e; ++i) {
    const T v = w[i];
    const T sign = static_cast<T>(v > T(0)) - static_cast<T>(v < T(0));
    const T s = v != v ? v : sign;  // numpy.sign(NaN) is NaN
    grad[i] += l1 * s + l2x2 * v;
  }
}

template <typename Range>
double chunked(int64_t n, Range&& range) {
  return deterministic_sum(n, kElementsPerChunk, threads_for(n, kMinCheapElementsPerThread),
                           range);
}

}  // namespace

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return chunked(n, [&](int64_t b, int64_t e) { return squares_range(x, b, e); });
}

template <typename T>
double sum_abs(const T* x, int64_t n) {
  return chunked(n, [&](int64_t b, int64_t e) { return abs_range(x, b, e); });
}

template <typename T>
void scale_inplace(T* x, int64_t n, T alpha) {
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { scale_range(x, b, e, alpha); });
}

template <typename T>
void clip_inplace(T* x, int64_t n, T lo, T hi) {
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { clip_range(x, b, e, lo, hi); });
}

template <typename T>
void weight_penalty_backward(T* grad, const T* w, int64_t n, T l1, T l2x2) {
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { penalty_grad_range(grad, w, b, e, l1, l2x2); });
}

NNFAST_INSTANTIATE_NORMS(float)
NNFAST_INSTANTIATE_NORMS(double)

}  // namespace nnfast

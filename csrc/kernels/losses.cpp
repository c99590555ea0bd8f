#include "kernels/losses.h"

#include <cmath>

#include "common/activation.h"
#include "common/deterministic_sum.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"
#include "common/vector_math.h"

namespace nnfast {

namespace {

constexpr int64_t kElementsPerChunk = 4096;
// torch.nn.BCELoss: log terms clamped at -100, gradient denominator at least 1e-12.
constexpr double kBceLogMin = -100.0;
constexpr double kBceGradEps = 1e-12;

template <typename T>
T clamped_log(T x) {
  const T l = log_vec(x);
  return l < T(kBceLogMin) ? T(kBceLogMin) : l;  // NaN stays NaN, as numpy.maximum
}

// Per-range sums (one chunk of a deterministic_sum) and per-range gradients.

template <typename T>
NNFAST_SIMD_CLONES double mse_sum(const T* pred, const T* target, int64_t b, int64_t e) {
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T d = pred[i] - target[i];
    return d * d;
  });
}

template <typename T>
NNFAST_SIMD_CLONES void mse_grad(T* dpred, const T* pred, const T* target, int64_t b,
                                 int64_t e, T scale) {
  for (int64_t i = b; i < e; ++i) dpred[i] = scale * (pred[i] - target[i]);
}

template <typename T>
NNFAST_SIMD_CLONES double bce_sum(const T* prob, const T* target, int64_t b, int64_t e) {
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T p = prob[i], t = target[i];
    return t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p);
  });
}

template <typename T>
NNFAST_SIMD_CLONES void bce_grad(T* dprob, const T* prob, const T* target, int64_t b,
                                 int64_t e, T count) {
  for (int64_t i = b; i < e; ++i) {
    const T p = prob[i];
    const T var = p * (T(1) - p);
    const T denom = var < T(kBceGradEps) ? T(kBceGradEps) : var;
    dprob[i] = (p - target[i]) / denom / count;
  }
}

template <typename T>
NNFAST_SIMD_CLONES double bce_with_logits_sum(const T* logits, const T* target, int64_t b,
                                              int64_t e) {
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T z = logits[i];
    const T relu = z > T(0) ? z : T(0);
    return relu - z * target[i] + log1p_unit(exp_vec(-std::fabs(z)));
  });
}

template <typename T>
NNFAST_SIMD_CLONES void bce_with_logits_grad(T* dlogits, const T* logits, const T* target,
                                             int64_t b, int64_t e, T count) {
  for (int64_t i = b; i < e; ++i) dlogits[i] = (sigmoid_stable(logits[i]) - target[i]) / count;
}

// mean of range_sum over [0, n); NaN for n == 0, as numpy's mean of nothing.
template <typename RangeSum>
double mean_of(int64_t n, int64_t min_per_thread, RangeSum&& range_sum) {
  if (n == 0) return std::nan("");
  const double total =
      deterministic_sum(n, kElementsPerChunk, threads_for(n, min_per_thread), range_sum);
  return total / static_cast<double>(n);
}

template <typename Range>
void in_parallel(int64_t n, int64_t min_per_thread, Range&& range) {
  parallel_ranges(n, threads_for(n, min_per_thread), range);
}

}  // namespace

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n) {
  return mean_of(n, kMinCheapElementsPerThread,
                 [&](int64_t b, int64_t e) { return mse_sum(pred, target, b, e); });
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
  const T scale = static_cast<T>(2.0 / static_cast<double>(n));
  in_parallel(n, kMinCheapElementsPerThread,
              [&](int64_t b, int64_t e) { mse_grad(dpred, pred, target, b, e, scale); });
}

template <typename T>
double bce_forward(const T* prob, const T* target, int64_t n) {
  return -mean_of(n, kMinCostlyElementsPerThread,
                  [&](int64_t b, int64_t e) { return bce_sum(prob, target, b, e); });
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n) {
  const T count = static_cast<T>(n);
  in_parallel(n, kMinCheapElementsPerThread,
              [&](int64_t b, int64_t e) { bce_grad(dprob, prob, target, b, e, count); });
}

template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t n) {
  return mean_of(n, kMinCostlyElementsPerThread,
                 [&](int64_t b, int64_t e) { return bce_with_logits_sum(logits, target, b, e); });
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
  const T count = static_cast<T>(n);
  in_parallel(n, kMinCostlyElementsPerThread, [&](int64_t b, int64_t e) {
    bce_with_logits_grad(dlogits, logits, target, b, e, count);
  });
}

NNFAST_INSTANTIATE_LOSSES(float)
NNFAST_INSTANTIATE_LOSSES(double)

}  // namespace nnfast

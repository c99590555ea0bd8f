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

// The sample weight of element i of a (rows, cols) array, 1 without weights (an exact
// factor, so the unweighted losses are bitwise what they were).
template <typename T>
inline T row_weight(const T* sample, int64_t i, int64_t cols) {
  return sample ? sample[i / cols] : T(1);
}

// Per-range sums (one chunk of a deterministic_sum) and per-range gradients.

template <typename T>
NNFAST_SIMD_CLONES double mse_sum(const T* pred, const T* target, const T* sample,
                                  int64_t cols, int64_t b, int64_t e) {
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T d = pred[i] - target[i];
    return row_weight(sample, i, cols) * (d * d);
  });
}

template <typename T>
NNFAST_SIMD_CLONES void mse_grad(T* dpred, const T* pred, const T* target, const T* sample,
                                 int64_t cols, int64_t b, int64_t e, T scale) {
  for (int64_t i = b; i < e; ++i)
    dpred[i] = scale * row_weight(sample, i, cols) * (pred[i] - target[i]);
}

template <typename T>
NNFAST_SIMD_CLONES double bce_sum(const T* prob, const T* target, const T* sample,
                                  int64_t cols, int64_t b, int64_t e) {
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T p = prob[i], t = target[i];
    return row_weight(sample, i, cols) *
           (t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p));
  });
}

template <typename T>
NNFAST_SIMD_CLONES void bce_grad(T* dprob, const T* prob, const T* target, const T* sample,
                                 int64_t cols, int64_t b, int64_t e, T count) {
  for (int64_t i = b; i < e; ++i) {
    const T p = prob[i];
    const T var = p * (T(1) - p);
    const T denom = var < T(kBceGradEps) ? T(kBceGradEps) : var;
    dprob[i] = row_weight(sample, i, cols) * (p - target[i]) / denom / count;
  }
}

// Without pos_weight: max(z, 0) - z t + log1p(exp(-|z|)). With it, torch's form:
// (1 - t) z + (1 + (q - 1) t) softplus(-z), softplus(-z) = max(-z, 0) + log1p(exp(-|z|)).
template <typename T>
NNFAST_SIMD_CLONES double bce_with_logits_sum(const T* logits, const T* target,
                                              LossWeights<T> w, int64_t cols, int64_t b,
                                              int64_t e) {
  if (w.per_class == nullptr)
    return sum_terms<T>(b, e, [&](int64_t i) {
      const T z = logits[i];
      const T relu = z > T(0) ? z : T(0);
      return row_weight(w.sample, i, cols) *
             (relu - z * target[i] + log1p_unit(exp_vec(-std::fabs(z))));
    });
  return sum_terms<T>(b, e, [&](int64_t i) {
    const T z = logits[i], t = target[i], q = w.per_class[i % cols];
    const T softplus_neg = (z < T(0) ? -z : T(0)) + log1p_unit(exp_vec(-std::fabs(z)));
    return row_weight(w.sample, i, cols) *
           ((T(1) - t) * z + (T(1) + (q - T(1)) * t) * softplus_neg);
  });
}

template <typename T>
NNFAST_SIMD_CLONES void bce_with_logits_grad(T* dlogits, const T* logits, const T* target,
                                             LossWeights<T> w, int64_t cols, int64_t b,
                                             int64_t e, T count) {
  if (w.per_class == nullptr) {
    for (int64_t i = b; i < e; ++i)
      dlogits[i] = row_weight(w.sample, i, cols) * (sigmoid_stable(logits[i]) - target[i]) /
                   count;
    return;
  }
  for (int64_t i = b; i < e; ++i) {
    const T t = target[i], q = w.per_class[i % cols];
    dlogits[i] = row_weight(w.sample, i, cols) *
                 ((T(1) + (q - T(1)) * t) * sigmoid_stable(logits[i]) - q * t) / count;
  }
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
double mse_forward(const T* pred, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w) {
  return mean_of(rows * cols, kMinCheapElementsPerThread, [&](int64_t b, int64_t e) {
    return mse_sum(pred, target, w.sample, cols, b, e);
  });
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w) {
  const int64_t n = rows * cols;
  const T scale = static_cast<T>(2.0 / static_cast<double>(n));
  in_parallel(n, kMinCheapElementsPerThread, [&](int64_t b, int64_t e) {
    mse_grad(dpred, pred, target, w.sample, cols, b, e, scale);
  });
}

template <typename T>
double bce_forward(const T* prob, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w) {
  return -mean_of(rows * cols, kMinCostlyElementsPerThread, [&](int64_t b, int64_t e) {
    return bce_sum(prob, target, w.sample, cols, b, e);
  });
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w) {
  const int64_t n = rows * cols;
  const T count = static_cast<T>(n);
  in_parallel(n, kMinCheapElementsPerThread, [&](int64_t b, int64_t e) {
    bce_grad(dprob, prob, target, w.sample, cols, b, e, count);
  });
}

template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t rows, int64_t cols,
                               LossWeights<T> w) {
  return mean_of(rows * cols, kMinCostlyElementsPerThread, [&](int64_t b, int64_t e) {
    return bce_with_logits_sum(logits, target, w, cols, b, e);
  });
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t rows,
                              int64_t cols, LossWeights<T> w) {
  const int64_t n = rows * cols;
  const T count = static_cast<T>(n);
  in_parallel(n, kMinCostlyElementsPerThread, [&](int64_t b, int64_t e) {
    bce_with_logits_grad(dlogits, logits, target, w, cols, b, e, count);
  });
}

NNFAST_INSTANTIATE_LOSSES(float)
NNFAST_INSTANTIATE_LOSSES(double)

}  // namespace nnfast

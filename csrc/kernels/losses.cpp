#include "kernels/losses.h"

#include <cmath>

#include "common/activation.h"
#include "common/deterministic_sum.h"
#include "common/parallel.h"
#include "common/threading.h"

namespace nnfast {

namespace {

constexpr int64_t kElementsPerChunk = 4096;
// torch.nn.BCELoss: log terms clamped at -100, gradient denominator at least 1e-12.
constexpr double kBceLogMin = -100.0;
constexpr double kBceGradEps = 1e-12;

// mean of term(i) over [0, n); NaN for n == 0, as numpy's mean of nothing.
template <typename Term>
double mean_of(int64_t n, int64_t min_per_thread, Term&& term) {
  if (n == 0) return std::nan("");
  const double total = deterministic_sum(n, kElementsPerChunk, threads_for(n, min_per_thread),
                                         [&](int64_t b, int64_t e) { return sum_terms(b, e, term); });
  return total / static_cast<double>(n);
}

// out[i] = f(i) over [0, n), in parallel above the threshold.
template <typename F>
void elementwise(int64_t n, int64_t min_per_thread, F&& f) {
  parallel_ranges(n, threads_for(n, min_per_thread), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(i);
  });
}

template <typename T>
T clamped_log(T x) {
  const T l = std::log(x);
  return l < T(kBceLogMin) ? T(kBceLogMin) : l;  // NaN stays NaN, as numpy.maximum
}

}  // namespace

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n) {
  return mean_of(n, kMinCheapElementsPerThread, [&](int64_t i) {
    const double d = pred[i] - target[i];
    return d * d;
  });
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
  const T scale = static_cast<T>(2.0 / static_cast<double>(n));
  elementwise(n, kMinCheapElementsPerThread,
              [&](int64_t i) { dpred[i] = scale * (pred[i] - target[i]); });
}

template <typename T>
double bce_forward(const T* prob, const T* target, int64_t n) {
  return -mean_of(n, kMinCostlyElementsPerThread, [&](int64_t i) {
    const T p = prob[i], t = target[i];
    return static_cast<double>(t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p));
  });
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n) {
  const T count = static_cast<T>(n);
  elementwise(n, kMinCheapElementsPerThread, [&](int64_t i) {
    const T p = prob[i];
    const T var = p * (T(1) - p);
    const T denom = var < T(kBceGradEps) ? T(kBceGradEps) : var;
    dprob[i] = (p - target[i]) / denom / count;
  });
}

template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t n) {
  return mean_of(n, kMinCostlyElementsPerThread, [&](int64_t i) {
    const T z = logits[i];
    const T relu = z > T(0) ? z : T(0);
    return static_cast<double>(relu - z * target[i] + std::log1p(std::exp(-std::fabs(z))));
  });
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
  const T count = static_cast<T>(n);
  elementwise(n, kMinCostlyElementsPerThread,
              [&](int64_t i) { dlogits[i] = (sigmoid_stable(logits[i]) - target[i]) / count; });
}

#define NNFAST_INSTANTIATE(T)                                                          \
  template double mse_forward<T>(const T*, const T*, int64_t);                         \
  template void mse_backward<T>(T*, const T*, const T*, int64_t);                      \
  template double bce_forward<T>(const T*, const T*, int64_t);                         \
  template void bce_backward<T>(T*, const T*, const T*, int64_t);                      \
  template double bce_with_logits_forward<T>(const T*, const T*, int64_t);             \
  template void bce_with_logits_backward<T>(T*, const T*, const T*, int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

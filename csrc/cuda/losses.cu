// A forward's terms are computed inside the sum that returns its mean to the host
// (cuda/block_sum.cuh), so no per-row or per-element workspace holds them.
#include "cuda/losses.h"

#include <cmath>

#include "cuda/activation_device.cuh"
#include "cuda/block_sum.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

constexpr double kBceLogMin = -100.0;  // torch.nn.BCELoss's clamp of each log term
constexpr double kBceGradEps = 1e-12;

bool valid_rows(int64_t N, int64_t C) { return N > 0 && C > 0; }

// Row `row` of softmax cross-entropy, logits (N, C), probs (N, C), labels (N) or target
// (N, C): writes the row's probs and returns its loss. As the CPU kernel: the exps sum in
// double, and the label's logit or the target's products are read before the row of probs
// (which may be the logits) is written.
template <typename T>
struct SoftmaxCrossEntropyRow {
  T* probs;
  const T* logits;
  const int64_t* labels;
  const T* target;
  int64_t C;

  __device__ double operator()(int64_t row) const {
    const T* z = logits + row * C;
    T* p = probs + row * C;
    T max = z[0];
    for (int64_t j = 1; j < C; ++j) max = z[j] > max ? z[j] : max;
    double picked = NAN, t_sum = 0.0, t_dot = 0.0;
    if (labels) {
      const int64_t label = labels[row];
      if (label >= 0 && label < C) picked = static_cast<double>(z[label]);
    } else {
      const T* t = target + row * C;
      for (int64_t j = 0; j < C; ++j) {
        t_sum += static_cast<double>(t[j]);
        t_dot += static_cast<double>(t[j]) * static_cast<double>(z[j] - max);
      }
    }
    double sum = 0.0;
    for (int64_t j = 0; j < C; ++j) {
      const T e = std::exp(z[j] - max);
      p[j] = e;
      sum += static_cast<double>(e);
    }
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t j = 0; j < C; ++j) p[j] *= inv;
    const double log_sum = static_cast<double>(std::log(static_cast<T>(sum)));
    return labels ? log_sum - (picked - static_cast<double>(max)) : log_sum * t_sum - t_dot;
  }
};

// dlogits (N, C), probs (N, C), labels (N) or target (N, C)
template <typename T>
__global__ void softmax_cross_entropy_backward_kernel(T* dlogits, const T* probs,
                                                      const int64_t* labels, const T* target,
                                                      int64_t N, int64_t C, T inv_n) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* p = probs + row * C;
    T* d = dlogits + row * C;
    if (labels) {
      const int64_t label = labels[row];
      for (int64_t j = 0; j < C; ++j) d[j] = (j == label ? p[j] - T(1) : p[j]) * inv_n;
    } else {
      const T* t = target + row * C;
      T t_sum = T(0);
      for (int64_t j = 0; j < C; ++j) t_sum += t[j];
      for (int64_t j = 0; j < C; ++j) d[j] = (p[j] * t_sum - t[j]) * inv_n;
    }
  }
}

// term i of sum (pred - target)^2, pred (n), target (n)
template <typename T>
struct MseTerm {
  const T* pred;
  const T* target;
  __device__ double operator()(int64_t i) const {
    const T d = pred[i] - target[i];
    return static_cast<double>(d * d);
  }
};

// dpred (n), pred (n), target (n)
template <typename T>
__global__ void mse_backward_kernel(T* dpred, const T* pred, const T* target, int64_t n, T scale) {
  NNFAST_GRID_STRIDE_LOOP(i, n) dpred[i] = scale * (pred[i] - target[i]);
}

// log(x) clamped below at -100; NaN stays NaN, as numpy.maximum
template <typename T>
__device__ T clamped_log(T x) {
  const T l = std::log(x);
  return l < T(kBceLogMin) ? T(kBceLogMin) : l;
}

// term i of sum t log p + (1 - t) log(1 - p), prob (n), target (n)
template <typename T>
struct BceTerm {
  const T* prob;
  const T* target;
  __device__ double operator()(int64_t i) const {
    const T p = prob[i], t = target[i];
    return static_cast<double>(t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p));
  }
};

// dprob (n), prob (n), target (n)
template <typename T>
__global__ void bce_backward_kernel(T* dprob, const T* prob, const T* target, int64_t n,
                                    T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T p = prob[i];
    const T var = p * (T(1) - p);
    const T denom = var < T(kBceGradEps) ? T(kBceGradEps) : var;
    dprob[i] = (p - target[i]) / denom / count;
  }
}

// term i of sum max(z, 0) - z t + log1p(exp(-|z|)), logits (n), target (n)
template <typename T>
struct BceWithLogitsTerm {
  const T* logits;
  const T* target;
  __device__ double operator()(int64_t i) const {
    const T z = logits[i];
    const T relu = z > T(0) ? z : T(0);
    return static_cast<double>(relu - z * target[i] + std::log1p(std::exp(-std::fabs(z))));
  }
};

// dlogits (n), logits (n), target (n)
template <typename T>
__global__ void bce_with_logits_backward_kernel(T* dlogits, const T* logits, const T* target,
                                                int64_t n, T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n)
    dlogits[i] = (sigmoid_stable_device(logits[i]) - target[i]) / count;
}

// term `row` of the count: 1 where the row's first largest logit is at the label; logits
// (N, C), labels (N)
template <typename T>
struct ArgmaxHit {
  const T* logits;
  const int64_t* labels;
  int64_t C;
  __device__ double operator()(int64_t row) const {
    const T* z = logits + row * C;
    int64_t argmax = 0;
    for (int64_t j = 1; j < C; ++j)
      if (z[j] > z[argmax]) argmax = j;
    return argmax == labels[row] ? 1.0 : 0.0;
  }
};

// term i of the count: 1 where the logit's sign agrees with the target; logits (n), target (n)
template <typename T>
struct SignHit {
  const T* logits;
  const T* target;
  __device__ double operator()(int64_t i) const {
    return (logits[i] >= T(0)) == (target[i] >= T(0.5)) ? 1.0 : 0.0;
  }
};

// The counts are sums of 0 and 1 in double: exact below 2^53.
template <typename Term>
int64_t count_to_host(int64_t n, const Term& term, const char* kernel) {
  return static_cast<int64_t>(sum_to_host(n, term, kernel));
}

}  // namespace

template <typename T>
double softmax_cross_entropy_forward(T* probs, const T* logits, const int64_t* labels,
                                     const T* target, int64_t N, int64_t C) {
  if (!valid_rows(N, C)) return NAN;
  const SoftmaxCrossEntropyRow<T> row{probs, logits, labels, target, C};
  return sum_to_host(N, row, "softmax_cross_entropy_forward") / static_cast<double>(N);
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C) {
  if (!valid_rows(N, C)) return;
  softmax_cross_entropy_backward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(
      dlogits, probs, labels, target, N, C, static_cast<T>(1.0 / static_cast<double>(N)));
  check_launch("softmax_cross_entropy_backward");
}

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n) {
  return sum_to_host(n, MseTerm<T>{pred, target}, "mse_forward") / static_cast<double>(n);
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
  if (n <= 0) return;
  mse_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      dpred, pred, target, n, static_cast<T>(2.0 / static_cast<double>(n)));
  check_launch("mse_backward");
}

template <typename T>
double bce_forward(const T* prob, const T* target, int64_t n) {
  return -sum_to_host(n, BceTerm<T>{prob, target}, "bce_forward") / static_cast<double>(n);
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dprob, prob, target, n,
                                                              static_cast<T>(n));
  check_launch("bce_backward");
}

template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t n) {
  return sum_to_host(n, BceWithLogitsTerm<T>{logits, target}, "bce_with_logits_forward") /
         static_cast<double>(n);
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_with_logits_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      dlogits, logits, target, n, static_cast<T>(n));
  check_launch("bce_with_logits_backward");
}

template <typename T>
int64_t count_argmax_hits(const T* logits, const int64_t* labels, int64_t N, int64_t C) {
  if (!valid_rows(N, C)) return 0;
  return count_to_host(N, ArgmaxHit<T>{logits, labels, C}, "count_argmax_hits");
}

template <typename T>
int64_t count_sign_hits(const T* logits, const T* target, int64_t n) {
  return count_to_host(n, SignHit<T>{logits, target}, "count_sign_hits");
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template double softmax_cross_entropy_forward<T>(T*, const T*, const int64_t*, const T*,     \
                                                   int64_t, int64_t);                          \
  template void softmax_cross_entropy_backward<T>(T*, const T*, const int64_t*, const T*,      \
                                                  int64_t, int64_t);                           \
  NNFAST_INSTANTIATE_LOSSES(T)                                                                 \
  template int64_t count_argmax_hits<T>(const T*, const int64_t*, int64_t, int64_t);           \
  template int64_t count_sign_hits<T>(const T*, const T*, int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::gpu

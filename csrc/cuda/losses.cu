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

// The sample weight of element i of a (rows, cols) array, 1 without weights.
template <typename T>
__device__ T row_weight(const T* sample, int64_t i, int64_t cols) {
  return sample ? sample[i / cols] : T(1);
}

// The weight s_r k_label of row r, as the CPU kernel's: 1 without weights, NaN for a label
// outside [0, C).
template <typename T>
__device__ T label_row_weight(const LossWeights<T>& w, int64_t r, int64_t label, int64_t C) {
  T k = T(1);
  if (w.per_class) k = label >= 0 && label < C ? w.per_class[label] : T(NAN);
  return w.sample ? w.sample[r] * k : k;
}

// term i of the sparse mean's denominator: the class weight of row i's label
template <typename T>
struct LabelWeight {
  const int64_t* labels;
  const T* per_class;
  int64_t C;
  __device__ double operator()(int64_t i) const {
    const int64_t label = labels[i];
    return label >= 0 && label < C ? static_cast<double>(per_class[label]) : NAN;
  }
};

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
  LossWeights<T> w;

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
        const T kt = w.per_class ? w.per_class[j] * t[j] : t[j];
        t_sum += static_cast<double>(kt);
        t_dot += static_cast<double>(kt) * static_cast<double>(z[j] - max);
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
    if (labels)
      return static_cast<double>(label_row_weight(w, row, labels[row], C)) *
             (log_sum - (picked - static_cast<double>(max)));
    const double s = w.sample ? static_cast<double>(w.sample[row]) : 1.0;
    return s * (log_sum * t_sum - t_dot);
  }
};

// dlogits (N, C), probs (N, C), labels (N) or target (N, C)
template <typename T>
__global__ void softmax_cross_entropy_backward_kernel(T* dlogits, const T* probs,
                                                      const int64_t* labels, const T* target,
                                                      int64_t N, int64_t C, T inv_n,
                                                      LossWeights<T> w) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* p = probs + row * C;
    T* d = dlogits + row * C;
    if (labels) {
      const int64_t label = labels[row];
      const T scale = inv_n * label_row_weight(w, row, label, C);
      for (int64_t j = 0; j < C; ++j) d[j] = (j == label ? p[j] - T(1) : p[j]) * scale;
    } else {
      const T* t = target + row * C;
      const T scale = w.sample ? inv_n * w.sample[row] : inv_n;
      T t_sum = T(0);
      for (int64_t j = 0; j < C; ++j) t_sum += w.per_class ? w.per_class[j] * t[j] : t[j];
      for (int64_t j = 0; j < C; ++j)
        d[j] = (p[j] * t_sum - (w.per_class ? w.per_class[j] * t[j] : t[j])) * scale;
    }
  }
}

// term i of sum s (pred - target)^2, pred (rows, cols), target (rows, cols), sample (rows)
template <typename T>
struct MseTerm {
  const T* pred;
  const T* target;
  const T* sample;
  int64_t cols;
  __device__ double operator()(int64_t i) const {
    const T d = pred[i] - target[i];
    return static_cast<double>(row_weight(sample, i, cols) * (d * d));
  }
};

// dpred (n), pred (n), target (n), sample (n / cols) or null
template <typename T>
__global__ void mse_backward_kernel(T* dpred, const T* pred, const T* target, const T* sample,
                                    int64_t cols, int64_t n, T scale) {
  NNFAST_GRID_STRIDE_LOOP(i, n)
    dpred[i] = scale * row_weight(sample, i, cols) * (pred[i] - target[i]);
}

// log(x) clamped below at -100; NaN stays NaN, as numpy.maximum
template <typename T>
__device__ T clamped_log(T x) {
  const T l = std::log(x);
  return l < T(kBceLogMin) ? T(kBceLogMin) : l;
}

// term i of sum s (t log p + (1 - t) log(1 - p)), prob (rows, cols), target (rows, cols)
template <typename T>
struct BceTerm {
  const T* prob;
  const T* target;
  const T* sample;
  int64_t cols;
  __device__ double operator()(int64_t i) const {
    const T p = prob[i], t = target[i];
    return static_cast<double>(row_weight(sample, i, cols) *
                               (t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p)));
  }
};

// dprob (n), prob (n), target (n), sample (n / cols) or null
template <typename T>
__global__ void bce_backward_kernel(T* dprob, const T* prob, const T* target, const T* sample,
                                    int64_t cols, int64_t n, T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T p = prob[i];
    const T var = p * (T(1) - p);
    const T denom = var < T(kBceGradEps) ? T(kBceGradEps) : var;
    dprob[i] = row_weight(sample, i, cols) * (p - target[i]) / denom / count;
  }
}

// term i of sum s l, logits (rows, cols), target (rows, cols): l = max(z, 0) - z t +
// log1p(exp(-|z|)), or with pos_weight q (cols) (1 - t) z + (1 + (q - 1) t) softplus(-z)
template <typename T>
struct BceWithLogitsTerm {
  const T* logits;
  const T* target;
  LossWeights<T> w;
  int64_t cols;
  __device__ double operator()(int64_t i) const {
    const T z = logits[i], t = target[i];
    const T log_term = std::log1p(std::exp(-std::fabs(z)));
    T l;
    if (w.per_class) {
      const T q = w.per_class[i % cols];
      l = (T(1) - t) * z + (T(1) + (q - T(1)) * t) * ((z < T(0) ? -z : T(0)) + log_term);
    } else {
      l = (z > T(0) ? z : T(0)) - z * t + log_term;
    }
    return static_cast<double>(row_weight(w.sample, i, cols) * l);
  }
};

// dlogits (n), logits (n), target (n), w as BceWithLogitsTerm's
template <typename T>
__global__ void bce_with_logits_backward_kernel(T* dlogits, const T* logits, const T* target,
                                                LossWeights<T> w, int64_t cols, int64_t n,
                                                T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T t = target[i], sig = sigmoid_stable_device(logits[i]);
    const T g = w.per_class ? (T(1) + (w.per_class[i % cols] - T(1)) * t) * sig -
                                  w.per_class[i % cols] * t
                            : sig - t;
    dlogits[i] = row_weight(w.sample, i, cols) * g / count;
  }
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

// The sparse mean's denominator: the sum of the labels' class weights, else N.
template <typename T>
double label_weight_sum(const int64_t* labels, int64_t N, int64_t C, const LossWeights<T>& w) {
  if (labels == nullptr || w.per_class == nullptr) return static_cast<double>(N);
  return sum_to_host(N, LabelWeight<T>{labels, w.per_class, C}, "label_weight_sum");
}

template <typename T>
double softmax_cross_entropy_forward(T* probs, const T* logits, const int64_t* labels,
                                     const T* target, int64_t N, int64_t C, LossWeights<T> w) {
  if (!valid_rows(N, C)) return NAN;
  const SoftmaxCrossEntropyRow<T> row{probs, logits, labels, target, C, w};
  return sum_to_host(N, row, "softmax_cross_entropy_forward") /
         label_weight_sum(labels, N, C, w);
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C, LossWeights<T> w) {
  if (!valid_rows(N, C)) return;
  const T inv_n = static_cast<T>(1.0 / label_weight_sum(labels, N, C, w));
  softmax_cross_entropy_backward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(
      dlogits, probs, labels, target, N, C, inv_n, w);
  check_launch("softmax_cross_entropy_backward");
}

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w) {
  const int64_t n = rows * cols;
  return sum_to_host(n, MseTerm<T>{pred, target, w.sample, cols}, "mse_forward") /
         static_cast<double>(n);
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  mse_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      dpred, pred, target, w.sample, cols, n, static_cast<T>(2.0 / static_cast<double>(n)));
  check_launch("mse_backward");
}

template <typename T>
double bce_forward(const T* prob, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w) {
  const int64_t n = rows * cols;
  return -sum_to_host(n, BceTerm<T>{prob, target, w.sample, cols}, "bce_forward") /
         static_cast<double>(n);
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  bce_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dprob, prob, target, w.sample,
                                                              cols, n, static_cast<T>(n));
  check_launch("bce_backward");
}

template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t rows, int64_t cols,
                               LossWeights<T> w) {
  const int64_t n = rows * cols;
  return sum_to_host(n, BceWithLogitsTerm<T>{logits, target, w, cols},
                     "bce_with_logits_forward") /
         static_cast<double>(n);
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t rows,
                              int64_t cols, LossWeights<T> w) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  bce_with_logits_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      dlogits, logits, target, w, cols, n, static_cast<T>(n));
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
                                                   int64_t, int64_t, LossWeights<T>);          \
  template void softmax_cross_entropy_backward<T>(T*, const T*, const int64_t*, const T*,      \
                                                  int64_t, int64_t, LossWeights<T>);           \
  NNFAST_INSTANTIATE_LOSSES(T)                                                                 \
  template int64_t count_argmax_hits<T>(const T*, const int64_t*, int64_t, int64_t);           \
  template int64_t count_sign_hits<T>(const T*, const T*, int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::gpu

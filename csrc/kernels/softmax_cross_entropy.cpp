#include "kernels/softmax_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/deterministic_sum.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"
#include "kernels/softmax_row.h"

namespace nnfast {

namespace {

// Rows per loss chunk: about this many logits, so chunk bounds depend on (N, C) only.
constexpr int64_t kLogitsPerChunk = 2048;

int64_t rows_per_chunk(int64_t C) { return std::max<int64_t>(1, kLogitsPerChunk / C); }

bool label_ok(int64_t label, int64_t C) { return label >= 0 && label < C; }

// The weight of row r with label `label`: s_r k_label; exactly 1 without weights, so the
// unweighted loss is bitwise what it was. NaN for a label outside [0, C).
template <typename T>
T label_row_weight(const LossWeights<T>& w, int64_t r, int64_t label, int64_t C) {
  T k = T(1);
  if (w.per_class) k = label_ok(label, C) ? w.per_class[label] : std::numeric_limits<T>::quiet_NaN();
  return w.sample ? w.sample[r] * k : k;
}

// The mean's denominator: the sum of the labels' class weights (torch's), else N.
template <typename T>
double label_weight_sum(const LossWeights<T>& w, const int64_t* labels, int64_t N, int64_t C) {
  if (w.per_class == nullptr) return static_cast<double>(N);
  double sum = 0.0;
  for (int64_t i = 0; i < N; ++i)
    sum += label_ok(labels[i], C) ? static_cast<double>(w.per_class[labels[i]])
                                  : std::numeric_limits<double>::quiet_NaN();
  return sum;
}

// log of each row sum of a block, in T: vectorized for float32, whose loss does not need
// more than float precision in log(sum) (sum >= 1, so its log is O(1)).
template <typename T>
inline void log_sums(T* out, const double* sums, int64_t R) {
  for (int64_t r = 0; r < R; ++r) out[r] = log_vec(static_cast<T>(sums[r]));
}

// Rows [begin, end): probs and the summed loss, sum of log_sum - (x[label] - max).
template <typename T>
NNFAST_SIMD_CLONES double sparse_rows(T* probs, const T* logits, const int64_t* labels,
                                      int64_t begin, int64_t end, int64_t C,
                                      LossWeights<T> w) {
  T max[kSoftmaxBlockRows], log_sum[kSoftmaxBlockRows];
  double sums[kSoftmaxBlockRows], picked[kSoftmaxBlockRows], weight[kSoftmaxBlockRows];
  const int64_t block = softmax_block_rows(C);
  double loss = 0.0;
  for (int64_t r0 = begin; r0 < end; r0 += block) {
    const int64_t R = std::min(block, end - r0);
    // The label's logit is read before the block of probs (possibly the logits) is written.
    for (int64_t r = 0; r < R; ++r) {
      const T* x = logits + (r0 + r) * C;
      const int64_t label = labels[r0 + r];
      max[r] = row_max(x, C);
      picked[r] = label_ok(label, C) ? static_cast<double>(x[label])
                                     : std::numeric_limits<double>::quiet_NaN();
      weight[r] = static_cast<double>(label_row_weight(w, r0 + r, label, C));
    }
    softmax_block(probs + r0 * C, logits + r0 * C, R, C, max, sums);
    log_sums(log_sum, sums, R);
    for (int64_t r = 0; r < R; ++r)
      loss += weight[r] *
              (static_cast<double>(log_sum[r]) - (picked[r] - static_cast<double>(max[r])));
  }
  return loss;
}

// The target weighted by the class weights, k_j t_j (t_j without them).
template <typename T>
inline T weighted_target(const LossWeights<T>& w, const T* t, int64_t j) {
  return w.per_class ? w.per_class[j] * t[j] : t[j];
}

// Rows [begin, end): probs and the summed loss, sum of -s k t (x - max - log_sum), computed
// as s (log_sum * sum(k t) - sum(k t (x - max))) with the target read before probs is
// written.
template <typename T>
NNFAST_SIMD_CLONES double dense_rows(T* probs, const T* logits, const T* target,
                                     int64_t begin, int64_t end, int64_t C, LossWeights<T> w) {
  T max[kSoftmaxBlockRows], log_sum[kSoftmaxBlockRows];
  double sums[kSoftmaxBlockRows], t_sum[kSoftmaxBlockRows], t_dot[kSoftmaxBlockRows];
  const int64_t block = softmax_block_rows(C);
  double loss = 0.0;
  for (int64_t r0 = begin; r0 < end; r0 += block) {
    const int64_t R = std::min(block, end - r0);
    for (int64_t r = 0; r < R; ++r) {
      const T* x = logits + (r0 + r) * C;
      const T* t = target + (r0 + r) * C;
      max[r] = row_max(x, C);
      double ts = 0.0, td = 0.0;
      for (int64_t j = 0; j < C; ++j) {
        const T kt = weighted_target(w, t, j);
        ts += kt;
        td += static_cast<double>(kt) * static_cast<double>(x[j] - max[r]);
      }
      t_sum[r] = ts;
      t_dot[r] = td;
    }
    softmax_block(probs + r0 * C, logits + r0 * C, R, C, max, sums);
    log_sums(log_sum, sums, R);
    for (int64_t r = 0; r < R; ++r) {
      const double s = w.sample ? static_cast<double>(w.sample[r0 + r]) : 1.0;
      loss += s * (static_cast<double>(log_sum[r]) * t_sum[r] - t_dot[r]);
    }
  }
  return loss;
}

template <typename T>
NNFAST_SIMD_CLONES void sparse_backward_rows(T* dlogits, const T* probs,
                                             const int64_t* labels, int64_t begin,
                                             int64_t end, int64_t C, T inv_n,
                                             LossWeights<T> w) {
  for (int64_t r = begin; r < end; ++r) {
    const T* p = probs + r * C;
    T* d = dlogits + r * C;
    const int64_t label = labels[r];
    if (!label_ok(label, C)) {
      for (int64_t j = 0; j < C; ++j) d[j] = std::numeric_limits<T>::quiet_NaN();
      continue;
    }
    const T scale = inv_n * label_row_weight(w, r, label, C);
    const T p_label = p[label];  // read before d (possibly probs itself) is written
    for (int64_t j = 0; j < C; ++j) d[j] = p[j] * scale;
    d[label] = (p_label - T(1)) * scale;
  }
}

template <typename T>
NNFAST_SIMD_CLONES void dense_backward_rows(T* dlogits, const T* probs, const T* target,
                                            int64_t begin, int64_t end, int64_t C, T inv_n,
                                            LossWeights<T> w) {
  for (int64_t r = begin; r < end; ++r) {
    const T* p = probs + r * C;
    const T* t = target + r * C;
    T* d = dlogits + r * C;
    const T scale = w.sample ? inv_n * w.sample[r] : inv_n;
    T t_sum = 0;
    for (int64_t j = 0; j < C; ++j) t_sum += weighted_target(w, t, j);
    for (int64_t j = 0; j < C; ++j) d[j] = (p[j] * t_sum - weighted_target(w, t, j)) * scale;
  }
}

}  // namespace

template <typename T>
double softmax_cross_entropy_forward_sparse(T* probs, const T* logits, const int64_t* labels,
                                            int64_t N, int64_t C, LossWeights<T> w) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  const double total = deterministic_sum(N, rows_per_chunk(C), threads, [&](int64_t b, int64_t e) {
    return sparse_rows(probs, logits, labels, b, e, C, w);
  });
  return total / label_weight_sum(w, labels, N, C);
}

template <typename T>
double softmax_cross_entropy_forward_dense(T* probs, const T* logits, const T* target,
                                           int64_t N, int64_t C, LossWeights<T> w) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  const double total = deterministic_sum(N, rows_per_chunk(C), threads, [&](int64_t b, int64_t e) {
    return dense_rows(probs, logits, target, b, e, C, w);
  });
  return total / static_cast<double>(N);
}

template <typename T>
void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs, const int64_t* labels,
                                           int64_t N, int64_t C, LossWeights<T> w) {
  const T inv_n = static_cast<T>(1.0 / label_weight_sum(w, labels, N, C));
  parallel_ranges(N, threads_for(N * C, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    sparse_backward_rows(dlogits, probs, labels, b, e, C, inv_n, w);
  });
}

template <typename T>
void softmax_cross_entropy_backward_dense(T* dlogits, const T* probs, const T* target,
                                          int64_t N, int64_t C, LossWeights<T> w) {
  const T inv_n = static_cast<T>(1.0 / static_cast<double>(N));
  parallel_ranges(N, threads_for(N * C, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    dense_backward_rows(dlogits, probs, target, b, e, C, inv_n, w);
  });
}

#define NNFAST_INSTANTIATE(T)                                                                \
  template double softmax_cross_entropy_forward_sparse<T>(T*, const T*, const int64_t*,      \
                                                          int64_t, int64_t, LossWeights<T>); \
  template double softmax_cross_entropy_forward_dense<T>(T*, const T*, const T*, int64_t,    \
                                                         int64_t, LossWeights<T>);           \
  template void softmax_cross_entropy_backward_sparse<T>(T*, const T*, const int64_t*,       \
                                                         int64_t, int64_t, LossWeights<T>);  \
  template void softmax_cross_entropy_backward_dense<T>(T*, const T*, const T*, int64_t,     \
                                                        int64_t, LossWeights<T>);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

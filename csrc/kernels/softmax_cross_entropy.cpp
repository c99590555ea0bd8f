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

// log of each row sum of a block, in T: vectorized for float32, whose loss does not need
// more than float precision in log(sum) (sum >= 1, so its log is O(1)).
template <typename T>
inline void log_sums(T* out, const double* sums, int64_t R) {
  for (int64_t r = 0; r < R; ++r) out[r] = log_vec(static_cast<T>(sums[r]));
}

// Rows [begin, end): probs and the summed loss, sum of log_sum - (x[label] - max).
template <typename T>
NNFAST_SIMD_CLONES double sparse_rows(T* probs, const T* logits, const int64_t* labels,
                                      int64_t begin, int64_t end, int64_t C) {
  T max[kSoftmaxBlockRows], log_sum[kSoftmaxBlockRows];
  double sums[kSoftmaxBlockRows], picked[kSoftmaxBlockRows];
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
    }
    softmax_block(probs + r0 * C, logits + r0 * C, R, C, max, sums);
    log_sums(log_sum, sums, R);
    for (int64_t r = 0; r < R; ++r)
      loss += static_cast<double>(log_sum[r]) - (picked[r] - static_cast<double>(max[r]));
  }
  return loss;
}

// Rows [begin, end): probs and the summed loss, sum of -t (x - max - log_sum), computed as
// log_sum * sum(t) - sum(t (x - max)) with the target read before probs is written.
template <typename T>
NNFAST_SIMD_CLONES double dense_rows(T* probs, const T* logits, const T* target,
                                     int64_t begin, int64_t end, int64_t C) {
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
        ts += t[j];
        td += static_cast<double>(t[j]) * static_cast<double>(x[j] - max[r]);
      }
      t_sum[r] = ts;
      t_dot[r] = td;
    }
    softmax_block(probs + r0 * C, logits + r0 * C, R, C, max, sums);
    log_sums(log_sum, sums, R);
    for (int64_t r = 0; r < R; ++r) loss += static_cast<double>(log_sum[r]) * t_sum[r] - t_dot[r];
  }
  return loss;
}

template <typename T>
NNFAST_SIMD_CLONES void sparse_backward_rows(T* dlogits, const T* probs,
                                             const int64_t* labels, int64_t begin,
                                             int64_t end, int64_t C, T inv_n) {
  for (int64_t r = begin; r < end; ++r) {
    const T* p = probs + r * C;
    T* d = dlogits + r * C;
    const int64_t label = labels[r];
    if (!label_ok(label, C)) {
      for (int64_t j = 0; j < C; ++j) d[j] = std::numeric_limits<T>::quiet_NaN();
      continue;
    }
    const T p_label = p[label];  // read before d (possibly probs itself) is written
    for (int64_t j = 0; j < C; ++j) d[j] = p[j] * inv_n;
    d[label] = (p_label - T(1)) * inv_n;
  }
}

template <typename T>
NNFAST_SIMD_CLONES void dense_backward_rows(T* dlogits, const T* probs, const T* target,
                                            int64_t begin, int64_t end, int64_t C, T inv_n) {
  for (int64_t r = begin; r < end; ++r) {
    const T* p = probs + r * C;
    const T* t = target + r * C;
    T* d = dlogits + r * C;
    T t_sum = 0;
    for (int64_t j = 0; j < C; ++j) t_sum += t[j];
    for (int64_t j = 0; j < C; ++j) d[j] = (p[j] * t_sum - t[j]) * inv_n;
  }
}

}  // namespace

template <typename T>
double softmax_cross_entropy_forward_sparse(T* probs, const T* logits, const int64_t* labels,
                                            int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  const double total = deterministic_sum(N, rows_per_chunk(C), threads, [&](int64_t b, int64_t e) {
    return sparse_rows(probs, logits, labels, b, e, C);
  });
  return total / static_cast<double>(N);
}

template <typename T>
double softmax_cross_entropy_forward_dense(T* probs, const T* logits, const T* target,
                                           int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  const double total = deterministic_sum(N, rows_per_chunk(C), threads, [&](int64_t b, int64_t e) {
    return dense_rows(probs, logits, target, b, e, C);
  });
  return total / static_cast<double>(N);
}

template <typename T>
void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs, const int64_t* labels,
                                           int64_t N, int64_t C) {
  const T inv_n = static_cast<T>(1.0 / static_cast<double>(N));
  parallel_ranges(N, threads_for(N * C, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    sparse_backward_rows(dlogits, probs, labels, b, e, C, inv_n);
  });
}

template <typename T>
void softmax_cross_entropy_backward_dense(T* dlogits, const T* probs, const T* target,
                                          int64_t N, int64_t C) {
  const T inv_n = static_cast<T>(1.0 / static_cast<double>(N));
  parallel_ranges(N, threads_for(N * C, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    dense_backward_rows(dlogits, probs, target, b, e, C, inv_n);
  });
}

#define NNFAST_INSTANTIATE(T)                                                                \
  template double softmax_cross_entropy_forward_sparse<T>(T*, const T*, const int64_t*,      \
                                                          int64_t, int64_t);                 \
  template double softmax_cross_entropy_forward_dense<T>(T*, const T*, const T*, int64_t,    \
                                                         int64_t);                           \
  template void softmax_cross_entropy_backward_sparse<T>(T*, const T*, const int64_t*,       \
                                                         int64_t, int64_t);                  \
  template void softmax_cross_entropy_backward_dense<T>(T*, const T*, const T*, int64_t,     \
                                                        int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

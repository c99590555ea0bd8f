#include "kernels/batchnorm.h"

#include <cmath>

#include "common/column_sums.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

// The gradient is a difference of O(1) terms that nearly cancel (exactly, for a batch of 2):
// fused multiply-adds would round it differently from the reference's separate operations.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace nnfast {

namespace {

using ColumnAcc = double (*)[kColumnBlock];

// The column-block bodies of the reductions. A full block has a compile-time width, so the
// inner loop over its 16 columns vectorizes; the last, narrower block takes the general loop.

template <bool kFull, typename T>
inline void add_columns(ColumnAcc acc, const T* inp, int64_t C, int64_t rb, int64_t re,
                        int64_t col, int64_t width) {
  const int64_t w = kFull ? kColumnBlock : width;
  for (int64_t r = rb; r < re; ++r) {
    const T* x = inp + r * C + col;
    for (int64_t j = 0; j < w; ++j) acc[0][j] += x[j];
  }
}

// acc[0] += x (colsum of inp)
template <typename T>
NNFAST_SIMD_CLONES void sum_block(ColumnAcc acc, const T* inp, int64_t C, int64_t rb,
                                  int64_t re, int64_t col, int64_t width) {
  if (width == kColumnBlock) add_columns<true>(acc, inp, C, rb, re, col, width);
  else add_columns<false>(acc, inp, C, rb, re, col, width);
}

template <bool kFull, typename T>
inline void add_centered_squares(ColumnAcc acc, const T* inp, const T* mean, int64_t C,
                                 int64_t rb, int64_t re, int64_t col, int64_t width) {
  const int64_t w = kFull ? kColumnBlock : width;
  for (int64_t r = rb; r < re; ++r) {
    const T* x = inp + r * C + col;
    for (int64_t j = 0; j < w; ++j) {
      const double d = static_cast<double>(x[j]) - static_cast<double>(mean[col + j]);
      acc[0][j] += d * d;
    }
  }
}

// acc[0] += (x - mean)^2, in double
template <typename T>
NNFAST_SIMD_CLONES void centered_squares_block(ColumnAcc acc, const T* inp, const T* mean,
                                               int64_t C, int64_t rb, int64_t re, int64_t col,
                                               int64_t width) {
  if (width == kColumnBlock) add_centered_squares<true>(acc, inp, mean, C, rb, re, col, width);
  else add_centered_squares<false>(acc, inp, mean, C, rb, re, col, width);
}

template <bool kFull, typename T>
inline void add_grad_terms(ColumnAcc acc, const T* dout, const T* inp, const T* mean,
                           const T* inv_std, int64_t C, int64_t rb, int64_t re, int64_t col,
                           int64_t width) {
  const int64_t w = kFull ? kColumnBlock : width;
  for (int64_t r = rb; r < re; ++r) {
    const T* g = dout + r * C + col;
    const T* x = inp + r * C + col;
    for (int64_t j = 0; j < w; ++j) {
      const T x_hat = (x[j] - mean[col + j]) * inv_std[col + j];
      acc[0][j] += g[j];
      acc[1][j] += static_cast<double>(g[j] * x_hat);
    }
  }
}

// acc[0] += dout, acc[1] += dout * x_hat
template <typename T>
NNFAST_SIMD_CLONES void grad_terms_block(ColumnAcc acc, const T* dout, const T* inp,
                                         const T* mean, const T* inv_std, int64_t C,
                                         int64_t rb, int64_t re, int64_t col, int64_t width) {
  if (width == kColumnBlock) add_grad_terms<true>(acc, dout, inp, mean, inv_std, C, rb, re, col, width);
  else add_grad_terms<false>(acc, dout, inp, mean, inv_std, C, rb, re, col, width);
}

// out rows [rb, re) = (inp - mean) * inv_std * gamma + beta, in the reference's order.
template <bool kGamma, bool kBeta, typename T>
NNFAST_SIMD_CLONES void normalize_rows(T* out, const T* inp, const T* mean, const T* inv_std,
                                       const T* gamma, const T* beta, int64_t C, int64_t rb,
                                       int64_t re) {
  for (int64_t r = rb; r < re; ++r) {
    const T* x = inp + r * C;
    T* y = out + r * C;
    for (int64_t c = 0; c < C; ++c) {
      T v = (x[c] - mean[c]) * inv_std[c];
      if (kGamma) v = v * gamma[c];
      if (kBeta) v = v + beta[c];
      y[c] = v;
    }
  }
}

template <typename T>
void normalize(T* out, const T* inp, const T* mean, const T* inv_std, const T* gamma,
               const T* beta, int64_t N, int64_t C) {
  parallel_ranges(N, threads_for(N * C, kMinCheapElementsPerThread), [&](int64_t rb, int64_t re) {
    if (gamma && beta) normalize_rows<true, true>(out, inp, mean, inv_std, gamma, beta, C, rb, re);
    else if (gamma) normalize_rows<true, false>(out, inp, mean, inv_std, gamma, beta, C, rb, re);
    else if (beta) normalize_rows<false, true>(out, inp, mean, inv_std, gamma, beta, C, rb, re);
    else normalize_rows<false, false>(out, inp, mean, inv_std, gamma, beta, C, rb, re);
  });
}

// dinp rows [rb, re) = scale_over_n * (N dout - sum_g - x_hat * sum_gx)
template <typename T>
NNFAST_SIMD_CLONES void train_grad_rows(T* dinp, const T* dout, const T* inp, const T* mean,
                                        const T* inv_std, const T* scale_over_n,
                                        const T* sum_g, const T* sum_gx, T n, int64_t C,
                                        int64_t rb, int64_t re) {
  for (int64_t r = rb; r < re; ++r) {
    const T* g = dout + r * C;
    const T* x = inp + r * C;
    T* d = dinp + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const T x_hat = (x[c] - mean[c]) * inv_std[c];
      d[c] = scale_over_n[c] * (n * g[c] - sum_g[c] - x_hat * sum_gx[c]);
    }
  }
}

// dinp rows [rb, re) = dout * scale
template <typename T>
NNFAST_SIMD_CLONES void eval_grad_rows(T* dinp, const T* dout, const T* scale, int64_t C,
                                       int64_t rb, int64_t re) {
  for (int64_t r = rb; r < re; ++r)
    for (int64_t c = 0; c < C; ++c) dinp[r * C + c] = dout[r * C + c] * scale[c];
}

}  // namespace

template <typename T>
void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean, T* running_var,
                             const T* inp, const T* gamma, const T* beta, int64_t N, int64_t C,
                             double momentum, double eps) {
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);
  column_sums<1>(
      N, C, threads,
      [&](ColumnAcc acc, int64_t rb, int64_t re, int64_t col, int64_t width) {
        sum_block(acc, inp, C, rb, re, col, width);
      },
      [&](int64_t c, const double* sum) { mean[c] = static_cast<T>(sum[0] / N); });
  // Two passes: the variance from centered values, exact for data far from zero.
  const T keep = static_cast<T>(1.0 - momentum), mom = static_cast<T>(momentum);
  const T unbiased = static_cast<T>(momentum * N / (N - 1));
  column_sums<1>(
      N, C, threads,
      [&](ColumnAcc acc, int64_t rb, int64_t re, int64_t col, int64_t width) {
        centered_squares_block(acc, inp, mean, C, rb, re, col, width);
      },
      [&](int64_t c, const double* sum) {
        const double var = sum[0] / N;
        inv_std[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
        running_mean[c] = keep * running_mean[c] + mom * mean[c];
        running_var[c] = keep * running_var[c] + unbiased * static_cast<T>(var);
      });
  normalize(out, inp, mean, inv_std, gamma, beta, N, C);
}

template <typename T>
void batchnorm_forward_eval(T* out, T* inv_std, const T* inp, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, int64_t N, int64_t C,
                            double eps) {
  const T eps_t = static_cast<T>(eps);
  for (int64_t c = 0; c < C; ++c) inv_std[c] = T(1) / std::sqrt(running_var[c] + eps_t);
  normalize(out, inp, running_mean, inv_std, gamma, beta, N, C);
}

template <typename T>
void batchnorm_backward(T* dinp, T* dgamma, T* dbeta, T* work, const T* dout, const T* inp,
                        const T* mean, const T* inv_std, const T* gamma, int64_t N, int64_t C,
                        bool training) {
  T* scale = work;  // gamma * inv_std, divided by N in training
  T* sum_g = work + C;
  T* sum_gx = work + 2 * C;
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);
  for (int64_t c = 0; c < C; ++c) {
    const T s = gamma ? gamma[c] * inv_std[c] : inv_std[c];
    scale[c] = training ? s / static_cast<T>(N) : s;
  }
  if (training || dgamma || dbeta) {
    column_sums<2>(
        N, C, threads,
        [&](ColumnAcc acc, int64_t rb, int64_t re, int64_t col, int64_t width) {
          grad_terms_block(acc, dout, inp, mean, inv_std, C, rb, re, col, width);
        },
        [&](int64_t c, const double* sums) {
          sum_g[c] = static_cast<T>(sums[0]);
          sum_gx[c] = static_cast<T>(sums[1]);
          if (dbeta) dbeta[c] += sum_g[c];
          if (dgamma) dgamma[c] += sum_gx[c];
        });
  }
  const T n = static_cast<T>(N);
  parallel_ranges(N, threads, [&](int64_t rb, int64_t re) {
    if (training) train_grad_rows(dinp, dout, inp, mean, inv_std, scale, sum_g, sum_gx, n, C, rb, re);
    else eval_grad_rows(dinp, dout, scale, C, rb, re);
  });
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template void batchnorm_forward_train<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*,   \
                                           int64_t, int64_t, double, double);                  \
  template void batchnorm_forward_eval<T>(T*, T*, const T*, const T*, const T*, const T*,      \
                                          const T*, int64_t, int64_t, double);                 \
  template void batchnorm_backward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*,  \
                                      const T*, int64_t, int64_t, bool);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

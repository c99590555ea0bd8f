#include "kernels/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "common/column_sums.h"
#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

// Columns are processed in blocks whose per-column values live on the stack. A block's
// final pass writes only its own columns, so out/dx may be x or dout.
constexpr int64_t kColumns = 1024;

// The per-column operands of one block, gamma and beta filled with 1 and 0 when absent
// (x * 1 and x + 0 are exact, so the arithmetic matches the reference's either way).
template <typename T>
struct ColumnBlock {
  int64_t c0 = 0, width = 0;
  T shift[kColumns], scale[kColumns], gamma[kColumns], beta[kColumns];
  double sums[kColumns];

  void load_affine(const T* g, const T* b) {
    for (int64_t c = 0; c < width; ++c) {
      gamma[c] = g ? g[c0 + c] : T(1);
      beta[c] = b ? b[c0 + c] : T(0);
    }
  }

  // sums[c] = column c0 + c of m (N, C), summed over the rows in double.
  void sum_columns(const T* m, int64_t N, int64_t C, int threads) {
    const int64_t first = c0;
    column_sums(sums, N, width, threads,
                [=](int64_t r, int64_t c) { return static_cast<double>(m[r * C + first + c]); });
  }
};

// out[r, c0 + c] = (x - shift[c]) * scale[c] * gamma[c] + beta[c] for rows [begin, end)
template <typename T>
NNFAST_SIMD_CLONES void normalize_rows(T* out, const T* x, int64_t begin, int64_t end,
                                       int64_t C, const ColumnBlock<T>& blk) {
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * C + blk.c0;
    T* yr = out + r * C + blk.c0;
    for (int64_t c = 0; c < blk.width; ++c)
      yr[c] = (xr[c] - blk.shift[c]) * blk.scale[c] * blk.gamma[c] + blk.beta[c];
  }
}

template <typename T>
void normalize(T* out, const T* x, int64_t N, int64_t C, const ColumnBlock<T>& blk) {
  parallel_ranges(N, threads_for(N * blk.width, kMinCheapElementsPerThread),
                  [&](int64_t b, int64_t e) { normalize_rows(out, x, b, e, C, blk); });
}

// dx[r, c0 + c] for rows [begin, end); blk.scale = gamma inv_std, shift = mean.
template <typename T>
NNFAST_SIMD_CLONES void grad_rows(T* dx, const T* dout, const T* x, const T* inv_std,
                                  const T* sum_g, const T* sum_gx, int64_t begin, int64_t end,
                                  int64_t N, int64_t C, bool training,
                                  const ColumnBlock<T>& blk) {
  const T n = static_cast<T>(N);
  for (int64_t r = begin; r < end; ++r) {
    const T* g = dout + r * C + blk.c0;
    const T* xr = x + r * C + blk.c0;
    T* d = dx + r * C + blk.c0;
    if (training) {
      for (int64_t c = 0; c < blk.width; ++c) {
        const T x_hat = (xr[c] - blk.shift[c]) * inv_std[c];
        d[c] = (blk.scale[c] / n) * (n * g[c] - sum_g[c] - x_hat * sum_gx[c]);
      }
    } else {
      for (int64_t c = 0; c < blk.width; ++c) d[c] = g[c] * blk.scale[c];
    }
  }
}

}  // namespace

template <typename T>
void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean, T* running_var,
                             const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                             double momentum, double eps) {
  const T n = static_cast<T>(N);
  const T keep = static_cast<T>(1.0 - momentum), m = static_cast<T>(momentum);
  const T unbias = static_cast<T>(momentum * static_cast<double>(N) / static_cast<double>(N - 1));
  ColumnBlock<T> blk;
  for (blk.c0 = 0; blk.c0 < C; blk.c0 += kColumns) {
    blk.width = std::min(kColumns, C - blk.c0);
    const int64_t c0 = blk.c0;
    const int threads = threads_for(N * blk.width, kMinCheapElementsPerThread);
    blk.sum_columns(x, N, C, threads);
    for (int64_t c = 0; c < blk.width; ++c) blk.shift[c] = static_cast<T>(blk.sums[c]) / n;
    const T* shift = blk.shift;
    column_sums(blk.sums, N, blk.width, threads, [=](int64_t r, int64_t c) {
      const T d = x[r * C + c0 + c] - shift[c];
      return static_cast<double>(d * d);
    });
    for (int64_t c = 0; c < blk.width; ++c) {
      const T var = static_cast<T>(blk.sums[c]) / n;
      blk.scale[c] = T(1) / std::sqrt(var + static_cast<T>(eps));
      mean[c0 + c] = blk.shift[c];
      inv_std[c0 + c] = blk.scale[c];
      running_mean[c0 + c] = keep * running_mean[c0 + c] + m * blk.shift[c];
      running_var[c0 + c] = keep * running_var[c0 + c] + unbias * var;
    }
    blk.load_affine(gamma, beta);
    normalize(out, x, N, C, blk);
  }
}

template <typename T>
void batchnorm_forward_eval(T* out, const T* x, const T* running_mean, const T* running_var,
                            const T* gamma, const T* beta, int64_t N, int64_t C, double eps) {
  ColumnBlock<T> blk;
  for (blk.c0 = 0; blk.c0 < C; blk.c0 += kColumns) {
    blk.width = std::min(kColumns, C - blk.c0);
    for (int64_t c = 0; c < blk.width; ++c) {
      blk.shift[c] = running_mean[blk.c0 + c];
      blk.scale[c] = T(1) / std::sqrt(running_var[blk.c0 + c] + static_cast<T>(eps));
    }
    blk.load_affine(gamma, beta);
    normalize(out, x, N, C, blk);
  }
}

template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                        const T* inv_std, const T* gamma, int64_t N, int64_t C, bool training) {
  ColumnBlock<T> blk;
  T sum_g[kColumns], sum_gx[kColumns];
  for (blk.c0 = 0; blk.c0 < C; blk.c0 += kColumns) {
    blk.width = std::min(kColumns, C - blk.c0);
    const int64_t c0 = blk.c0;
    const int threads = threads_for(N * blk.width, kMinCheapElementsPerThread);
    blk.sum_columns(dout, N, C, threads);
    for (int64_t c = 0; c < blk.width; ++c) sum_g[c] = static_cast<T>(blk.sums[c]);
    column_sums(blk.sums, N, blk.width, threads, [=](int64_t r, int64_t c) {
      const T x_hat = (x[r * C + c0 + c] - mean[c0 + c]) * inv_std[c0 + c];
      return static_cast<double>(dout[r * C + c0 + c] * x_hat);
    });
    for (int64_t c = 0; c < blk.width; ++c) {
      sum_gx[c] = static_cast<T>(blk.sums[c]);
      if (dbeta) dbeta[c0 + c] += sum_g[c];
      if (dgamma) dgamma[c0 + c] += sum_gx[c];
      blk.shift[c] = mean[c0 + c];
      blk.scale[c] = gamma ? gamma[c0 + c] * inv_std[c0 + c] : inv_std[c0 + c];
    }
    parallel_ranges(N, threads, [&](int64_t b, int64_t e) {
      grad_rows(dx, dout, x, inv_std + c0, sum_g, sum_gx, b, e, N, C, training, blk);
    });
  }
}

NNFAST_INSTANTIATE_BATCHNORM(float)
NNFAST_INSTANTIATE_BATCHNORM(double)

}  // namespace nnfast

#include "kernels/bias_grad.h"

#include "common/column_sums.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

using ColumnAcc = double (*)[kColumnBlock];

template <bool kFull, typename T>
inline void add_columns(ColumnAcc acc, const T* dout, int64_t C, int64_t row_begin,
                        int64_t row_end, int64_t col, int64_t width) {
  const int64_t w = kFull ? kColumnBlock : width;  // a full block vectorizes with a fixed width
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = dout + r * C + col;
    for (int64_t k = 0; k < w; ++k) acc[0][k] += row[k];
  }
}

// acc[0] (width) += column sums of dout[rows, col:col + width]; width <= kColumnBlock.
template <typename T>
NNFAST_SIMD_CLONES void sum_columns(ColumnAcc acc, const T* dout, int64_t C, int64_t row_begin,
                                    int64_t row_end, int64_t col, int64_t width) {
  if (width == kColumnBlock) add_columns<true>(acc, dout, C, row_begin, row_end, col, width);
  else add_columns<false>(acc, dout, C, row_begin, row_end, col, width);
}

}  // namespace

template <typename T>
void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta) {
  column_sums<1>(
      N, C, threads_for(N * C, kMinCheapElementsPerThread),
      [&](ColumnAcc acc, int64_t row_begin, int64_t row_end, int64_t col, int64_t width) {
        sum_columns(acc, dout, C, row_begin, row_end, col, width);
      },
      [&](int64_t c, const double* sum) {
        dbias[c] = beta != T(0) ? static_cast<T>(sum[0]) + beta * dbias[c]
                                : static_cast<T>(sum[0]);
      });
}

template void bias_grad<float>(float*, const float*, int64_t, int64_t, float);
template void bias_grad<double>(double*, const double*, int64_t, int64_t, double);

}  // namespace nnfast

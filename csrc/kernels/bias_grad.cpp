#include "kernels/bias_grad.h"

#include <algorithm>

#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

namespace {

// A task sums kColumnBlock columns (one cache line of float32) over one chunk of rows.
constexpr int64_t kColumnBlock = 16;
constexpr int64_t kMinRowsPerChunk = 128;
// Per-chunk column sums live on the caller's stack (32 KiB): no allocation per call.
constexpr int64_t kMaxPartials = 4096;

// acc (width) = column sums of dout[rows, col:col + width]; width <= kColumnBlock.
template <typename T>
NNFAST_SIMD_CLONES void sum_columns(double* acc, const T* dout, int64_t C, int64_t row_begin, int64_t row_end,
                 int64_t col, int64_t width) {
  double block[kColumnBlock] = {};
  if (width == kColumnBlock) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const T* row = dout + r * C + col;
      for (int64_t k = 0; k < kColumnBlock; ++k) block[k] += row[k];
    }
  } else {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const T* row = dout + r * C + col;
      for (int64_t k = 0; k < width; ++k) block[k] += row[k];
    }
  }
  std::copy(block, block + width, acc);
}

}  // namespace

template <typename T>
void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta) {
  // The row chunking depends on (N, C) only, never on the thread count.
  const int64_t max_chunks = C <= kMaxPartials ? kMaxPartials / C : 1;
  const int64_t row_chunks = std::clamp<int64_t>(ceil_div(N, kMinRowsPerChunk), 1, max_chunks);
  const int64_t rows_per_chunk = ceil_div(N, row_chunks);
  const int64_t chunks = N > 0 ? ceil_div(N, rows_per_chunk) : 0;
  const int64_t col_blocks = ceil_div(C, kColumnBlock);
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);

  double partial[kMaxPartials];  // (chunks, C) when chunks > 1
  auto finish = [&](int64_t c, double sum) {
    dbias[c] = beta != T(0) ? static_cast<T>(sum) + beta * dbias[c] : static_cast<T>(sum);
  };
  if (chunks <= 1) {
    parallel_tasks(col_blocks, threads, [&](int64_t block) {
      const int64_t col = block * kColumnBlock, width = std::min(kColumnBlock, C - col);
      double acc[kColumnBlock];
      sum_columns(acc, dout, C, 0, N, col, width);
      for (int64_t k = 0; k < width; ++k) finish(col + k, acc[k]);
    });
    return;
  }
  parallel_tasks(chunks * col_blocks, threads, [&](int64_t task) {
    const int64_t chunk = task / col_blocks, col = (task % col_blocks) * kColumnBlock;
    const int64_t row_begin = chunk * rows_per_chunk;
    sum_columns(partial + chunk * C + col, dout, C, row_begin,
                std::min(N, row_begin + rows_per_chunk), col, std::min(kColumnBlock, C - col));
  });
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * C + c];
    finish(c, sum);
  }
}

template void bias_grad<float>(float*, const float*, int64_t, int64_t, float);
template void bias_grad<double>(double*, const double*, int64_t, int64_t, double);

}  // namespace nnfast

// Column sums of an (N, C) array whose result does not depend on the thread count: the rows
// are cut into chunks whose bounds depend on (N, C) only, each task sums one chunk of rows of
// a block of kColumnBlock columns in row order in double, and the chunk sums of a column are
// added in chunk order. Bias gradients and batch-norm statistics (K terms per element) use it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/parallel.h"

namespace nnfast {

constexpr int64_t kColumnBlock = 16;  // one cache line of float32

// block_sums(acc, row_begin, row_end, col, width) adds, for k < K, the terms k of elements
// [row_begin, row_end) x [col, col + width) into acc[k][0 .. width) (zeroed by the caller;
// width <= kColumnBlock). finish(col, sums) then receives the K sums of each column once;
// it may run on any thread, one column per call.
template <int K, typename BlockSums, typename Finish>
void column_sums(int64_t N, int64_t C, int threads, BlockSums&& block_sums, Finish&& finish) {
  if (C <= 0) return;
  constexpr int64_t kMinRowsPerChunk = 128;
  // Per-chunk partial sums live on the caller's stack (32 KiB): no allocation per call.
  constexpr int64_t kMaxPartials = 4096;
  const int64_t max_chunks = K * C <= kMaxPartials ? kMaxPartials / (K * C) : 1;
  const int64_t row_chunks = std::clamp<int64_t>(ceil_div(N, kMinRowsPerChunk), 1, max_chunks);
  const int64_t rows_per_chunk = ceil_div(std::max<int64_t>(N, 1), row_chunks);
  const int64_t chunks = N > 0 ? ceil_div(N, rows_per_chunk) : 1;
  const int64_t col_blocks = ceil_div(C, kColumnBlock);

  if (chunks == 1) {
    parallel_tasks(col_blocks, threads, [&](int64_t block) {
      const int64_t col = block * kColumnBlock, width = std::min(kColumnBlock, C - col);
      double acc[K][kColumnBlock] = {};
      block_sums(acc, int64_t{0}, N, col, width);
      for (int64_t j = 0; j < width; ++j) {
        double sums[K];
        for (int k = 0; k < K; ++k) sums[k] = acc[k][j];
        finish(col + j, sums);
      }
    });
    return;
  }
  double partial[kMaxPartials];  // (chunks, K, C)
  parallel_tasks(chunks * col_blocks, threads, [&](int64_t task) {
    const int64_t chunk = task / col_blocks, col = (task % col_blocks) * kColumnBlock;
    const int64_t width = std::min(kColumnBlock, C - col);
    const int64_t row_begin = chunk * rows_per_chunk;
    double acc[K][kColumnBlock] = {};
    block_sums(acc, row_begin, std::min(N, row_begin + rows_per_chunk), col, width);
    for (int k = 0; k < K; ++k)
      std::copy(acc[k], acc[k] + width, partial + (chunk * K + k) * C + col);
  });
  for (int64_t c = 0; c < C; ++c) {
    double sums[K] = {};
    for (int64_t chunk = 0; chunk < chunks; ++chunk)
      for (int k = 0; k < K; ++k) sums[k] += partial[(chunk * K + k) * C + c];
    finish(c, sums);
  }
}

}  // namespace nnfast

// Column sums of an (N, C) matrix of terms, in double, whose bits do not depend on the
// thread count: column c is summed over row chunks whose bounds depend only on (N, C), each
// chunk in row order, and the chunk sums are added in chunk order. Used by bias_grad and
// batch norm.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/parallel.h"
#include "common/simd_clones.h"

namespace nnfast {

namespace column_sums_detail {

// A task sums kColumnBlock columns (one cache line of float32) over one chunk of rows.
constexpr int64_t kColumnBlock = 16;
constexpr int64_t kMinRowsPerChunk = 128;
// Per-chunk column sums live on the caller's stack (32 KiB): no allocation per call.
constexpr int64_t kMaxPartials = 4096;

// acc (width) = sum over rows [row_begin, row_end) of term(r, col + k), width <= kColumnBlock.
template <typename Term>
NNFAST_SIMD_CLONES void sum_column_block(double* acc, int64_t row_begin, int64_t row_end,
                                         int64_t col, int64_t width, const Term& term) {
  double block[kColumnBlock] = {};
  if (width == kColumnBlock) {
    for (int64_t r = row_begin; r < row_end; ++r)
      for (int64_t k = 0; k < kColumnBlock; ++k) block[k] += term(r, col + k);
  } else {
    for (int64_t r = row_begin; r < row_end; ++r)
      for (int64_t k = 0; k < width; ++k) block[k] += term(r, col + k);
  }
  std::copy(block, block + width, acc);
}

}  // namespace column_sums_detail

// sums (C) = sum over r in [0, N) of term(r, c), term returning double. term must not
// throw, allocate or call Python: it runs on the team's threads.
template <typename Term>
void column_sums(double* sums, int64_t N, int64_t C, int threads, const Term& term) {
  using namespace column_sums_detail;
  const int64_t max_chunks = C <= kMaxPartials ? kMaxPartials / C : 1;
  const int64_t row_chunks = std::clamp<int64_t>(ceil_div(N, kMinRowsPerChunk), 1, max_chunks);
  const int64_t rows_per_chunk = std::max<int64_t>(ceil_div(N, row_chunks), 1);
  const int64_t chunks = std::max<int64_t>(ceil_div(N, rows_per_chunk), 1);
  const int64_t col_blocks = ceil_div(C, kColumnBlock);
  if (chunks == 1) {
    parallel_tasks(col_blocks, threads, [&](int64_t block) {
      const int64_t col = block * kColumnBlock;
      sum_column_block(sums + col, 0, N, col, std::min(kColumnBlock, C - col), term);
    });
    return;
  }
  double partial[kMaxPartials];  // (chunks, C)
  parallel_tasks(chunks * col_blocks, threads, [&](int64_t task) {
    const int64_t chunk = task / col_blocks, col = (task % col_blocks) * kColumnBlock;
    const int64_t row_begin = chunk * rows_per_chunk;
    sum_column_block(partial + chunk * C + col, row_begin, std::min(N, row_begin + rows_per_chunk),
                     col, std::min(kColumnBlock, C - col), term);
  });
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * C + c];
    sums[c] = sum;
  }
}

}  // namespace nnfast

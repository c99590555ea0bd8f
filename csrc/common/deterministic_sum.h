// Sums whose result does not depend on the thread count: [0, n) is cut into chunks whose
// bounds depend only on n, each chunk is summed in a fixed order, and the chunk sums are
// added in chunk order. 1, 2 or 16 threads give bitwise the same loss.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/parallel.h"

namespace nnfast {

// Partial sums live on the caller's stack: no allocation per call.
constexpr int64_t kMaxSumChunks = 256;

// sum over i in [begin, end) of term(i), in double, four interleaved accumulators so the
// additions pipeline; the order is fixed by begin and end alone.
template <typename Term>
inline double sum_terms(int64_t begin, int64_t end, Term&& term) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t i = begin;
  for (; i + 4 <= end; i += 4)
    for (int k = 0; k < 4; ++k) acc[k] += term(i + k);
  for (; i < end; ++i) acc[0] += term(i);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// sum of chunk_sum(begin, end) over chunks of at least min_chunk items covering [0, n).
template <typename ChunkSum>
double deterministic_sum(int64_t n, int64_t min_chunk, int threads, ChunkSum&& chunk_sum) {
  if (n <= 0) return 0.0;
  const int64_t chunk = std::max(std::max<int64_t>(min_chunk, 1), ceil_div(n, kMaxSumChunks));
  const int64_t count = ceil_div(n, chunk);
  double partial[kMaxSumChunks];
  parallel_tasks(count, threads, [&](int64_t c) {
    const int64_t begin = c * chunk;
    partial[c] = chunk_sum(begin, std::min(n, begin + chunk));
  });
  double total = 0.0;
  for (int64_t c = 0; c < count; ++c) total += partial[c];
  return total;
}

}  // namespace nnfast

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

// sum over i in [begin, end) of term(i), the terms computed in T and added in double.
// The terms go through a small buffer so their loop vectorizes like an elementwise kernel;
// the buffer is then added into 16 double accumulators (lane k takes every 16th term), a
// plain vector add. The order is fixed by begin and end alone.
template <typename T, typename Term>
inline double sum_terms(int64_t begin, int64_t end, Term&& term) {
  constexpr int64_t kBlock = 256;
  constexpr int64_t kLanes = 16;
  double acc[kLanes] = {};
  T terms[kBlock];
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t n = std::min(kBlock, end - block);
    for (int64_t i = 0; i < n; ++i) terms[i] = term(block + i);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int64_t k = 0; k < kLanes; ++k) acc[k] += terms[i + k];
    for (int64_t k = 0; i < n; ++i, ++k) acc[k] += terms[i];
  }
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t k = 0; k < width; ++k) acc[k] += acc[k + width];
  return acc[0];
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

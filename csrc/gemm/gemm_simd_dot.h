// MicroKernel::dot_rows written once over a vector-traits class W (see gemm_simd_tile.h):
// rows of a transposed B dotted with one row of A, for batch-1 products such as dX = dY W^T.
// Internal linkage, instantiated by each ISA translation unit with its own flags.
#pragma once

#include <cstdint>

namespace nnfast {
namespace {

// out (R) = b (R, k; rows ldb apart) @ a (k). R independent sums keep R FMAs in flight; each
// is summed lane-wise (p modulo L), the last partial vector masked, then reduced across the
// lanes, so out[r] does not depend on R or on which other rows share its block.
template <class W, int R>
void simd_dot_block(typename W::T* out, const typename W::T* a, const typename W::T* b,
                    int64_t ldb, int64_t k) {
  using V = typename W::V;
  constexpr int L = W::L;
  V acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = W::zero();
  int64_t p = 0;
  for (; p + L <= k; p += L) {
    const V av = W::load(a + p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = W::fma(av, W::load(b + r * ldb + p), acc[r]);
  }
  if (p < k) {
    const typename W::Mask tail = W::tail_mask(static_cast<int>(k - p));
    const V av = W::load_tail(tail, a + p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = W::fma(av, W::load_tail(tail, b + r * ldb + p), acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = W::reduce_add(acc[r]);
}

// out (n) = b (n, k) @ a (k), in blocks of 8 rows, then single rows.
template <class W>
void simd_dot_rows(typename W::T* out, const typename W::T* a, const typename W::T* b,
                   int64_t ldb, int64_t k, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) simd_dot_block<W, 8>(out + j, a, b + j * ldb, ldb, k);
  for (; j < n; ++j) simd_dot_block<W, 1>(out + j, a, b + j * ldb, ldb, k);
}

}  // namespace
}  // namespace nnfast

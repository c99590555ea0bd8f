// MicroKernel::axpy_rows written once over a vector-traits class W (see gemm_simd_tile.h): one
// row of A times an untransposed B, for batch-1 products such as Y = x W + b. Internal
// linkage, instantiated by each ISA translation unit with its own flags.
#pragma once

#include <cstdint>

namespace nnfast {
namespace {

// out (n) += sum over r < R of a[r * a_step] * b (R, n; rows ldb apart), row r after row r - 1
// for every element: one pass over out, R rows of b read side by side, each front to back.
// The last partial vector (n - full lanes) is masked.
template <class W, int R>
void simd_axpy_step(typename W::T* out, const typename W::T* a, int64_t a_step,
                    const typename W::T* b, int64_t ldb, int64_t n, int64_t full,
                    const typename W::Mask& tail) {
  using V = typename W::V;
  constexpr int L = W::L;
  V av[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) av[r] = W::set1(a[r * a_step]);
  for (int64_t j = 0; j < full; j += L) {
    V x = W::load(out + j);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x = W::fma(av[r], W::load(b + r * ldb + j), x);
    W::store(out + j, x);
  }
  if (full < n) {
    V x = W::load_tail(tail, out + full);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x = W::fma(av[r], W::load_tail(tail, b + r * ldb + full), x);
    W::store_tail(out + full, tail, x);
  }
}

// out (n) = a (k) @ b (k, n): four rows of b per pass over out, then the remaining rows.
template <class W>
void simd_axpy_rows(typename W::T* out, const typename W::T* a, int64_t a_step,
                    const typename W::T* b, int64_t ldb, int64_t k, int64_t n) {
  constexpr int L = W::L;
  const int64_t full = n / L * L;
  const typename W::Mask tail = W::tail_mask(full < n ? static_cast<int>(n - full) : L);
  for (int64_t j = 0; j < full; j += L) W::store(out + j, W::zero());
  if (full < n) W::store_tail(out + full, tail, W::zero());
  int64_t p = 0;
  for (; p + 4 <= k; p += 4)
    simd_axpy_step<W, 4>(out, a + p * a_step, a_step, b + p * ldb, ldb, n, full, tail);
  for (; p < k; ++p)
    simd_axpy_step<W, 1>(out, a + p * a_step, a_step, b + p * ldb, ldb, n, full, tail);
}

}  // namespace
}  // namespace nnfast

// The register-tile microkernel written once over a vector-traits class W (W::V a SIMD vector
// of W::L elements of W::T, W::Mask what its loads and stores of a partial vector take). Each
// ISA translation unit includes its traits and this header, and instantiates it with its own
// compiler flags; everything here has internal linkage, so no instantiation compiled for one
// ISA can be picked by the linker for another.
//
// The tile is M rows (broadcast from A) by NV vectors (loaded from B). Per reduction step p:
// NV loads of B, M broadcasts of A, M * NV FMAs into accumulators that stay in registers.
#pragma once

#include <cstdint>
#include <utility>

#include "gemm/gemm_kernel.h"

namespace nnfast {
namespace {

// How the tile reads A (MicroTile's a_rs, a_cs).
enum class ALayout {
  packed,      // a_rs == 1, a_cs == MR: a micro-panel, contiguous
  transposed,  // a_rs == 1, a_cs == lda: a transposed A in place, each step on another row
  rows,        // a_rs == lda, a_cs == 1: a row-major A in place
};

// kTail: the last vector of the tile is partial, its first tail_lanes lanes in C.
template <class W, int M, int NV, bool kTail, ALayout kA>
void simd_tile(const MicroTile<typename W::T>& t, int tail_lanes) {
  using T = typename W::T;
  using V = typename W::V;
  constexpr int L = W::L;
  const typename W::Mask tail = W::tail_mask(kTail ? tail_lanes : L);
  constexpr bool kUnitRowStride = kA != ALayout::rows;  // row offsets are constants

  // C is read (or written) after the loop; start fetching its lines now.
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) W::prefetch(t.c + i * t.ldc + (NV * L - 1));

  V acc[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = W::zero();

  // Strided rows are addressed from two bases, rows i < 7 from a and the rest from a + 7
  // rows, so the offsets 0..6 row strides can share index registers instead of each row
  // holding its own pointer (14 of them do not fit in the general registers).
  const T* a = t.a;
  const T* a7 = t.a + (kUnitRowStride ? 7 : 7 * t.a_rs);
  const T* b = t.b;
  const int64_t a_rs = t.a_rs, a_cs = t.a_cs, b_rs = t.b_rs, k = t.k;
  // Unrolled by four: the counter, compare and pointer updates of every step otherwise add a
  // fifth to the 6 x 16 tile's 20 loads and FMAs (the tile alone on packed panels, Zen 3:
  // 96-97% of the FMA peak unrolled; 1024^3 single-thread about 1% faster in paired runs).
  // Each accumulator still sums over p in order, so results are bitwise unchanged.
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    V bv[NV];
    // A single row uses each B vector once, so B streams from L2: fetched 8 rows ahead (the
    // L1 prefetcher only brings in the next line; 12% on 1 x 784 x 128).
    if (M == 1) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) W::prefetch(b + 8 * b_rs + v * L);
    }
    // A transposed in place gives each step its own line (two, when the tile's rows cross
    // one), a stride of lda that the hardware prefetchers do not follow: fetched 8 steps
    // ahead, it runs 20% faster than without and than packing A first (784 x 256 x 128 TN).
    if (kA == ALayout::transposed) {
      W::prefetch(a + 8 * a_cs);
      if (M > 1) W::prefetch(a + 8 * a_cs + (M - 1));
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      bv[v] = (kTail && v == NV - 1) ? W::load_tail(tail, b + v * L) : W::load(b + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const T* row = i < 7 ? a + (kUnitRowStride ? i : i * a_rs)
                           : a7 + (kUnitRowStride ? i - 7 : (i - 7) * a_rs);
      const V ai = W::set1(*row);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = W::fma(ai, bv[v], acc[i][v]);
    }
    a += a_cs;
    a7 += a_cs;
    b += b_rs;
  }

  // Epilogue: alpha, beta (C read only when beta != 0), bias, and relu / leaky_relu in
  // registers; the other activations right after the store, by the shared scalar code.
  const Activation act = t.act;
  if (t.alpha == T(1) && t.beta == T(0) && !t.bias && act == Activation::identity) {
    // The plain product (every K block but the last of a fresh C): stores only.
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* c = t.c + i * t.ldc + v * L;
        if (kTail && v == NV - 1) W::store_tail(c, tail, acc[i][v]);
        else W::store(c, acc[i][v]);
      }
    return;
  }
  const V alpha = W::set1(t.alpha), beta = W::set1(t.beta), slope = W::set1(t.slope);
  const bool scale = t.alpha != T(1), accumulate = t.beta != T(0);
  V bias[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    if (!t.bias) bias[v] = W::zero();
    else bias[v] = (kTail && v == NV - 1) ? W::load_tail(tail, t.bias + v * L)
                                          : W::load(t.bias + v * L);
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    T* c = t.c + i * t.ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const bool part = kTail && v == NV - 1;
      V x = acc[i][v];
      if (scale) x = W::mul(alpha, x);
      if (accumulate) x = W::fma(beta, part ? W::load_tail(tail, c + v * L) : W::load(c + v * L), x);
      if (t.bias) x = W::add(x, bias[v]);
      if (act == Activation::relu) x = W::relu(x);
      else if (act == Activation::leaky_relu) x = W::leaky_relu(x, slope);
      if (part) W::store_tail(c + v * L, tail, x);
      else W::store(c + v * L, x);
    }
  }
  if (act != Activation::identity && act != Activation::relu && act != Activation::leaky_relu)
    activate_tile(t.c, t.ldc, M, t.n, act, t.slope);
}

template <class W>
using SimdTileFn = void (*)(const MicroTile<typename W::T>&, int tail_lanes);

template <class W, int NV, bool kTail, ALayout kA, int... Is>
SimdTileFn<W> simd_tile_for_rows(int m, std::integer_sequence<int, Is...>) {
  static constexpr SimdTileFn<W> by_rows[] = {&simd_tile<W, Is + 1, NV, kTail, kA>...};
  return by_rows[m - 1];
}

template <class W, int MR, int NVMAX, ALayout kA>
SimdTileFn<W> simd_tile_for(int m, int nv, bool tail) {
  const auto rows = std::make_integer_sequence<int, MR>{};
  if (nv == NVMAX) return tail ? simd_tile_for_rows<W, NVMAX, true, kA>(m, rows)
                               : simd_tile_for_rows<W, NVMAX, false, kA>(m, rows);
  return tail ? simd_tile_for_rows<W, 1, true, kA>(m, rows)
              : simd_tile_for_rows<W, 1, false, kA>(m, rows);
}

// The microkernel entry: picks the instantiation for this tile's rows, vectors, tail and
// A layout. MR rows by NVMAX vectors is the full tile.
template <class W, int MR, int NVMAX>
void simd_kernel(const MicroTile<typename W::T>& t) {
  static_assert(NVMAX == 1 || NVMAX == 2, "tiles of one or two vectors per row");
  constexpr int L = W::L;
  const int nv = (t.n + L - 1) / L;
  const int last = t.n - (nv - 1) * L;
  const bool tail = last != L;
  const SimdTileFn<W> fn =
      t.a_rs != 1    ? simd_tile_for<W, MR, NVMAX, ALayout::rows>(t.m, nv, tail)
      : t.a_cs == MR ? simd_tile_for<W, MR, NVMAX, ALayout::packed>(t.m, nv, tail)
                     : simd_tile_for<W, MR, NVMAX, ALayout::transposed>(t.m, nv, tail);
  fn(t, last);
}

template <class W, bool kTail, int... Is>
SimdTileFn<W> simd_row_for_vectors(int nv, std::integer_sequence<int, Is...>) {
  // One row: the row stride is never used, and one element per step is as good as packed.
  static constexpr SimdTileFn<W> by_vectors[] = {&simd_tile<W, 1, Is + 1, kTail, ALayout::packed>...};
  return by_vectors[nv - 1];
}

// The single-row entry (MicroKernel::run_row): one row of C, up to NVMAX vectors wide.
template <class W, int NVMAX>
void simd_row_kernel(const MicroTile<typename W::T>& t) {
  constexpr int L = W::L;
  const int nv = (t.n + L - 1) / L;
  const int last = t.n - (nv - 1) * L;
  const auto vectors = std::make_integer_sequence<int, NVMAX>{};
  const SimdTileFn<W> fn = last == L ? simd_row_for_vectors<W, false>(nv, vectors)
                                     : simd_row_for_vectors<W, true>(nv, vectors);
  fn(t, last);
}

}  // namespace
}  // namespace nnfast

// Packing with AVX2 vectors (8x8 float / 4x4 double register transposes), for the AVX2 and
// AVX-512 translation units: a transposing pack is the costliest copy a GEMM makes, and the
// portable loop in gemm_pack.cpp does it one element at a time. Same contract as
// pack_panels_portable (gemm_pack.h). Internal linkage: each ISA unit compiles its own.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {
namespace {

// Transposes the 8x8 block rows[r][q] (r, q < 8) into out[q] = column q.
inline void transpose_block(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// The same for the 4x4 block of doubles.
inline void transpose_block(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// The AVX2 traits of T (gemm_avx2_vec.h): the AVX-512 units pack with ymm vectors too, whose
// L x L blocks transpose in registers.
template <typename T>
using PackVec = std::conditional_t<std::is_same<T, float>::value, Avx2F32, Avx2F64>;

// The first n lanes of x stored at p, 0 < n < W::L.
template <class W>
void store_first(typename W::T* p, int n, typename W::V x) {
  W::store_tail(p, W::tail_mask(n), x);
}

// The first n elements of src copied to dst, 0 < n < W::L.
template <class W>
void copy_first(typename W::T* dst, const typename W::T* src, int n) {
  const typename W::Mask tail = W::tail_mask(n);
  W::store_tail(dst, tail, W::load_tail(tail, src));
}

// dst[p * R + r] = src[r * ld + p], r < rows (<= R), p < k: B x B blocks through registers
// (a last block of fewer rows is padded with zeros and stored in part), the k edge element
// by element.
template <typename T, int R>
void interleave_rows_x86(T* dst, const T* src, int64_t ld, int rows, int64_t k) {
  using W = PackVec<T>;
  constexpr int B = W::L;
  const int64_t full_k = k / B * B;
  for (int64_t p = 0; p < full_k; p += B) {
    for (int r0 = 0; r0 < rows; r0 += B) {
      const int n = rows - r0 < B ? rows - r0 : B;
      typename W::V v[B];
#pragma GCC unroll 8
      for (int q = 0; q < B; ++q) v[q] = q < n ? W::load(src + (r0 + q) * ld + p) : W::zero();
      transpose_block(v);
      if (n == B) {
#pragma GCC unroll 8
        for (int q = 0; q < B; ++q) W::store(dst + (p + q) * R + r0, v[q]);
      } else {
#pragma GCC unroll 8
        for (int q = 0; q < B; ++q) store_first<W>(dst + (p + q) * R + r0, n, v[q]);
      }
    }
  }
  for (int64_t p = full_k; p < k; ++p)
    for (int r = 0; r < rows; ++r) dst[p * R + r] = src[r * ld + p];
}

// n <= R elements, in whole vectors and a masked last one (memcpy becomes a library call
// at these sizes, slow).
template <typename T, int R>
void copy_short(T* dst, const T* src, int n) {
  using W = PackVec<T>;
  int i = 0;
  for (; i + W::L <= n; i += W::L) W::store(dst + i, W::load(src + i));
  if (i < n) copy_first<W>(dst + i, src + i, n - i);
}

// dst[p * R + r] = src[p * ld + r], r < extent: row p of the source feeds every panel in
// turn, so the source streams through memory in order.
template <typename T, int R>
void copy_rows_x86(T* dst, const T* src, int64_t ld, int64_t extent, int64_t k) {
  const int64_t full = extent / R * R;
  const int tail = static_cast<int>(extent - full);
  for (int64_t p = 0; p < k; ++p) {
    const T* s = src + p * ld;
    for (int64_t r0 = 0; r0 < full; r0 += R) copy_short<T, R>(dst + r0 * k + p * R, s + r0, R);
    if (tail) copy_short<T, R>(dst + full * k + p * R, s + full, tail);
  }
}

template <typename T, int R>
void pack_panels_x86_r(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                       int64_t k) {
  if (!interleave) return copy_rows_x86<T, R>(dst, src, ld, extent, k);
  for (int64_t r0 = 0; r0 < extent; r0 += R) {
    const int rows = static_cast<int>(extent - r0 < R ? extent - r0 : R);
    interleave_rows_x86<T, R>(dst + r0 * k, src + r0 * ld, ld, rows, k);
  }
}

// A PackFn (gemm_kernel.h) for the panel widths of the x86 kernels (their MR and NR); other
// widths go to the portable code.
template <typename T>
void pack_panels_x86(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                     int64_t k, int panel) {
  switch (panel) {
    case 6: return pack_panels_x86_r<T, 6>(dst, src, ld, interleave, extent, k);
    case 8: return pack_panels_x86_r<T, 8>(dst, src, ld, interleave, extent, k);
    case 14: return pack_panels_x86_r<T, 14>(dst, src, ld, interleave, extent, k);
    case 16: return pack_panels_x86_r<T, 16>(dst, src, ld, interleave, extent, k);
    case 32: return pack_panels_x86_r<T, 32>(dst, src, ld, interleave, extent, k);
    default: return pack_panels_portable(dst, src, ld, interleave, extent, k, panel);
  }
}

}  // namespace
}  // namespace nnfast

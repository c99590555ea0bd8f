// AVX2/FMA vector traits for gemm_simd_tile.h and the packing (gemm_x86_pack.h). Only the
// *_avx2_* translation units include this, and the *_avx512_* ones for their packing: all are
// compiled with -mavx2 -mfma or a superset; run them only where cpuid said so.
#pragma once

#include <immintrin.h>

#include "gemm/gemm_x86_store_first.h"
#include "gemm/gemm_x86_vec.h"

namespace nnfast {
namespace {

// A partial last vector of `lanes` elements: a lane mask (all ones for i < lanes) for the
// loads, which vmaskmov does at full speed, and the count for the stores, which it does not
// (gemm_x86_store_first.h).
struct Avx2Tail {
  __m256i mask;
  int lanes;
};

inline Avx2Tail avx2_tail(int lanes, int lane_bits) {
  const __m256i index = lane_bits == 32 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                                        : _mm256_setr_epi64x(0, 1, 2, 3);
  const __m256i limit = lane_bits == 32 ? _mm256_set1_epi32(lanes) : _mm256_set1_epi64x(lanes);
  return {lane_bits == 32 ? _mm256_cmpgt_epi32(limit, index) : _mm256_cmpgt_epi64(limit, index),
          lanes};
}

// Every lane added up. Halves added pairwise: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then
// the last two.
inline float sum_lanes(__m256 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline double sum_lanes(__m256d x) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Avx2F32 and Avx2F64 beyond X86Vec: the same intrinsics but for their type suffix SFX
// (ps, pd), written once so that the two cannot drift apart.
#define NNFAST_AVX2_TRAITS(V_, SFX)                                                          \
  using V = V_;                                                                              \
  using Mask = Avx2Tail;                                                                     \
  static Mask tail_mask(int lanes) { return avx2_tail(lanes, 8 * sizeof(T)); }               \
  static V zero() { return _mm256_setzero_##SFX(); }                                         \
  static V set1(T x) { return _mm256_set1_##SFX(x); }                                        \
  static V load(const T* p) { return _mm256_loadu_##SFX(p); }                                \
  static V load_tail(Mask m, const T* p) { return _mm256_maskload_##SFX(p, m.mask); }        \
  static void store(T* p, V x) { _mm256_storeu_##SFX(p, x); }                                \
  static void store_tail(T* p, Mask m, V x) { store_first_##SFX(p, m.lanes, x); }            \
  static V fma(V a, V b, V c) { return _mm256_fmadd_##SFX(a, b, c); }                        \
  static V mul(V a, V b) { return _mm256_mul_##SFX(a, b); }                                  \
  static V add(V a, V b) { return _mm256_add_##SFX(a, b); }                                  \
  /* Zero where !(x > 0), NaN included, exactly as the scalar x > 0 ? x : 0. */              \
  static V relu(V x) {                                                                       \
    return _mm256_and_##SFX(x, _mm256_cmp_##SFX(x, _mm256_setzero_##SFX(), _CMP_GT_OQ));     \
  }                                                                                          \
  static V leaky_relu(V x, V slope) {                                                        \
    const V pos = _mm256_cmp_##SFX(x, _mm256_setzero_##SFX(), _CMP_GT_OQ);                   \
    return _mm256_blendv_##SFX(_mm256_mul_##SFX(x, slope), x, pos);                          \
  }                                                                                          \
  static T reduce_add(V x) { return sum_lanes(x); }

struct Avx2F32 : X86Vec<float, 32> {
  NNFAST_AVX2_TRAITS(__m256, ps)
};

struct Avx2F64 : X86Vec<double, 32> {
  NNFAST_AVX2_TRAITS(__m256d, pd)
};

#undef NNFAST_AVX2_TRAITS

}  // namespace
}  // namespace nnfast

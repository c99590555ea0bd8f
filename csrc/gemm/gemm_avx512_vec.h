// AVX-512 vector traits for gemm_simd_tile.h. Only the *_avx512_* translation units include
// this, and they are compiled with -mavx512f/vl/bw/dq; run them only where cpuid said so.
#pragma once

#include <immintrin.h>

#include "gemm/gemm_x86_vec.h"

namespace nnfast {
namespace {

// Every lane added up: halves added pairwise down to one lane, all in zmm registers with
// zero-masked shuffles that keep every lane: GCC 12's unmasked shuffles, extracts, casts to
// ymm and reduce intrinsics pass an undefined vector that trips -Wuninitialized inside their
// headers.
inline float sum_lanes(__m512 x) {
  x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, 0xEE));
  x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, 0x01));
  x = _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0x4E));
  x = _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0xB1));
  return _mm512_cvtss_f32(x);
}

inline double sum_lanes(__m512d x) {
  x = _mm512_add_pd(x, _mm512_maskz_shuffle_f64x2(0xFF, x, x, 0xEE));
  x = _mm512_add_pd(x, _mm512_maskz_shuffle_f64x2(0xFF, x, x, 0x01));
  x = _mm512_add_pd(x, _mm512_maskz_permute_pd(0xFF, x, 0x01));
  return _mm512_cvtsd_f64(x);
}

// Avx512F32 and Avx512F64 beyond X86Vec: the same intrinsics but for their type suffix SFX
// (ps, pd), written once so that the two cannot drift apart. MASK_: one bit per lane.
#define NNFAST_AVX512_TRAITS(V_, MASK_, SFX)                                                 \
  using V = V_;                                                                              \
  using Mask = MASK_;                                                                        \
  static Mask tail_mask(int lanes) { return static_cast<Mask>((1u << lanes) - 1u); }         \
  static V zero() { return _mm512_setzero_##SFX(); }                                         \
  static V set1(T x) { return _mm512_set1_##SFX(x); }                                        \
  static V load(const T* p) { return _mm512_loadu_##SFX(p); }                                \
  static V load_tail(Mask m, const T* p) { return _mm512_maskz_loadu_##SFX(m, p); }          \
  static void store(T* p, V x) { _mm512_storeu_##SFX(p, x); }                                \
  static void store_tail(T* p, Mask m, V x) { _mm512_mask_storeu_##SFX(p, m, x); }           \
  static V fma(V a, V b, V c) { return _mm512_fmadd_##SFX(a, b, c); }                        \
  static V mul(V a, V b) { return _mm512_mul_##SFX(a, b); }                                  \
  static V add(V a, V b) { return _mm512_add_##SFX(a, b); }                                  \
  /* Zero where !(x > 0), NaN included, exactly as the scalar x > 0 ? x : 0. */              \
  static V relu(V x) {                                                                       \
    return _mm512_maskz_mov_##SFX(                                                           \
        _mm512_cmp_##SFX##_mask(x, _mm512_setzero_##SFX(), _CMP_GT_OQ), x);                  \
  }                                                                                          \
  static V leaky_relu(V x, V slope) {                                                        \
    const Mask pos = _mm512_cmp_##SFX##_mask(x, _mm512_setzero_##SFX(), _CMP_GT_OQ);         \
    return _mm512_mask_blend_##SFX(pos, _mm512_mul_##SFX(x, slope), x);                      \
  }                                                                                          \
  static T reduce_add(V x) { return sum_lanes(x); }

struct Avx512F32 : X86Vec<float, 64> {
  NNFAST_AVX512_TRAITS(__m512, __mmask16, ps)
};

struct Avx512F64 : X86Vec<double, 64> {
  NNFAST_AVX512_TRAITS(__m512d, __mmask8, pd)
};

#undef NNFAST_AVX512_TRAITS

}  // namespace
}  // namespace nnfast

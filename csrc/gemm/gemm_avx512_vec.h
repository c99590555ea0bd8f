// AVX-512 vector traits for gemm_simd_tile.h. Only the *_avx512_* translation units include
// this, and they are compiled with -mavx512f/vl/bw/dq; run them only where cpuid said so.
#pragma once

#include <immintrin.h>

namespace nnfast {
namespace {

struct Avx512F32 {
  using T = float;
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int L = 16;
  static Mask tail_mask(int lanes) { return static_cast<Mask>((1u << lanes) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load_tail(Mask m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, V x) { _mm512_storeu_ps(p, x); }
  static void store_tail(T* p, Mask m, V x) { _mm512_mask_storeu_ps(p, m, x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  // Zero where !(x > 0), NaN included, exactly as the scalar x > 0 ? x : 0.
  static V relu(V x) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), x);
  }
  static V leaky_relu(V x, V slope) {
    const Mask pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(pos, _mm512_mul_ps(x, slope), x);
  }
  static void prefetch(const T* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  // Halves added pairwise down to one lane, all in zmm registers with zero-masked shuffles
  // that keep every lane: GCC 12's unmasked shuffles, extracts, casts to ymm and reduce
  // intrinsics pass an undefined vector that trips -Wuninitialized inside their headers.
  static T reduce_add(V x) {
    x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, 0xEE));
    x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, 0x01));
    x = _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0x4E));
    x = _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0xB1));
    return _mm512_cvtss_f32(x);
  }
};

struct Avx512F64 {
  using T = double;
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int L = 8;
  static Mask tail_mask(int lanes) { return static_cast<Mask>((1u << lanes) - 1u); }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load_tail(Mask m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, V x) { _mm512_storeu_pd(p, x); }
  static void store_tail(T* p, Mask m, V x) { _mm512_mask_storeu_pd(p, m, x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V relu(V x) {
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), x);
  }
  static V leaky_relu(V x, V slope) {
    const Mask pos = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ);
    return _mm512_mask_blend_pd(pos, _mm512_mul_pd(x, slope), x);
  }
  static void prefetch(const T* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static T reduce_add(V x) {
    x = _mm512_add_pd(x, _mm512_maskz_shuffle_f64x2(0xFF, x, x, 0xEE));
    x = _mm512_add_pd(x, _mm512_maskz_shuffle_f64x2(0xFF, x, x, 0x01));
    x = _mm512_add_pd(x, _mm512_maskz_permute_pd(0xFF, x, 0x01));
    return _mm512_cvtsd_f64(x);
  }
};

}  // namespace
}  // namespace nnfast

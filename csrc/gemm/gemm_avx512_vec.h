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
  // Halves added pairwise down to one lane (GCC 12's _mm512_reduce_add_ps trips
  // -Wuninitialized inside the intrinsic).
  static T reduce_add(V x) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
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
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(x), _mm512_extractf64x4_pd(x, 1));
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

}  // namespace
}  // namespace nnfast

// The first n lanes of a 256-bit vector stored without vmaskmov: AMD's Zen cores run a
// masked store as microcode, 8 ns each on the Zen 4 guest here (a 6-lane piecewise store:
// 1.2 ns), which made every packed 6-row A micro-panel cost more than the FMAs it fed. At
// most three plain stores (4, 2, 1 lanes) instead; lanes are known per tile, so the branches
// predict. For the AVX2 and AVX-512 translation units only.
#pragma once

#include <immintrin.h>

namespace nnfast {
namespace {

// p[i] = x[i] for i < n, 0 < n < 8; nothing else written.
inline void store_first_ps(float* p, int n, __m256 x) {
  __m128 part = _mm256_castps256_ps128(x);
  if (n >= 4) {
    _mm_storeu_ps(p, part);
    part = _mm256_extractf128_ps(x, 1);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
    part = _mm_movehl_ps(part, part);
    p += 2;
    n -= 2;
  }
  if (n) _mm_store_ss(p, part);
}

// p[i] = x[i] for i < n, 0 < n < 4: the same bytes as 2n float lanes.
inline void store_first_pd(double* p, int n, __m256d x) {
  store_first_ps(reinterpret_cast<float*>(p), 2 * n, _mm256_castpd_ps(x));
}

}  // namespace
}  // namespace nnfast

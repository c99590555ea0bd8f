// What the x86 vector traits (gemm_avx2_vec.h, gemm_avx512_vec.h) share whatever the ISA:
// the element type, the lane count and the cache-line prefetch. For the AVX2 and AVX-512
// translation units only, as the traits.
#pragma once

#include <immintrin.h>

namespace nnfast {
namespace {

// The vector type itself is left to the traits: as a template argument it would lose its
// may_alias attribute (-Wignored-attributes).
template <typename ElementT, int kVectorBytes>
struct X86Vec {
  using T = ElementT;
  static constexpr int L = kVectorBytes / sizeof(T);
  static void prefetch(const T* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
};

}  // namespace
}  // namespace nnfast

#include "gemm/gemm_pack.h"

#include <algorithm>
#include <cstring>

namespace nnfast {

namespace {

// dst[p * R + r] = src[p * ld + r] for r < width: R-wide slices of consecutive rows.
template <typename T, int R>
void copy_slices(T* dst, const T* src, int64_t ld, int width, int64_t k) {
  if (width == R) {
    for (int64_t p = 0; p < k; ++p) std::memcpy(dst + p * R, src + p * ld, sizeof(T) * R);
  } else {
    for (int64_t p = 0; p < k; ++p) std::memcpy(dst + p * R, src + p * ld, sizeof(T) * width);
  }
}

// dst[p * R + r] = src[r * ld + p] for r < rows: interleaves `rows` rows, i.e. transposes a
// rows x k block into k x R. Blocks of 8 along p keep every source line in use while it is
// in L1, and let the compiler keep the 8 x R block in registers.
template <typename T, int R>
void interleave_rows(T* dst, const T* src, int64_t ld, int rows, int64_t k) {
  constexpr int kStep = 8;
  int64_t p = 0;
  if (rows == R) {
    for (; p + kStep <= k; p += kStep)
      for (int r = 0; r < R; ++r) {
        const T* s = src + r * ld + p;
        for (int q = 0; q < kStep; ++q) dst[(p + q) * R + r] = s[q];
      }
  }
  for (; p < k; ++p)
    for (int r = 0; r < rows; ++r) dst[p * R + r] = src[r * ld + p];
}

template <typename T, int R>
void pack_panels(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                 int64_t k) {
  for (int64_t r0 = 0; r0 < extent; r0 += R) {
    const int width = static_cast<int>(std::min<int64_t>(R, extent - r0));
    T* out = dst + r0 * k;
    if (interleave) interleave_rows<T, R>(out, src + r0 * ld, ld, width, k);
    else copy_slices<T, R>(out, src + r0, ld, width, k);
  }
}

// Panel widths are the kernels' MR and NR: instantiate those, so inner loops have constant
// trip counts.
template <typename T>
void pack_any(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent, int64_t k,
              int panel) {
  switch (panel) {
    case 4: return pack_panels<T, 4>(dst, src, ld, interleave, extent, k);
    case 6: return pack_panels<T, 6>(dst, src, ld, interleave, extent, k);
    case 8: return pack_panels<T, 8>(dst, src, ld, interleave, extent, k);
    case 14: return pack_panels<T, 14>(dst, src, ld, interleave, extent, k);
    case 16: return pack_panels<T, 16>(dst, src, ld, interleave, extent, k);
    case 32: return pack_panels<T, 32>(dst, src, ld, interleave, extent, k);
    default: break;
  }
  // A panel width no kernel uses today.
  for (int64_t r0 = 0; r0 < extent; r0 += panel) {
    const int64_t width = std::min<int64_t>(panel, extent - r0);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t r = 0; r < width; ++r)
        dst[r0 * k + p * panel + r] = interleave ? src[(r0 + r) * ld + p] : src[p * ld + r0 + r];
  }
}

}  // namespace

template <typename T>
void pack_a_panels(T* dst, const T* A, int64_t lda, bool trans, int64_t i0, int64_t m,
                   int64_t p0, int64_t k, int panel) {
  // op(A) rows are A's rows (interleave them) or A's columns (copy slices of A's rows).
  const T* src = trans ? A + p0 * lda + i0 : A + i0 * lda + p0;
  pack_any(dst, src, lda, !trans, m, k, panel);
}

template <typename T>
void pack_b_panels(T* dst, const T* B, int64_t ldb, bool trans, int64_t p0, int64_t k,
                   int64_t j0, int64_t n, int panel) {
  const T* src = trans ? B + j0 * ldb + p0 : B + p0 * ldb + j0;
  pack_any(dst, src, ldb, trans, n, k, panel);
}

template void pack_a_panels<float>(float*, const float*, int64_t, bool, int64_t, int64_t,
                                   int64_t, int64_t, int);
template void pack_a_panels<double>(double*, const double*, int64_t, bool, int64_t, int64_t,
                                    int64_t, int64_t, int);
template void pack_b_panels<float>(float*, const float*, int64_t, bool, int64_t, int64_t,
                                   int64_t, int64_t, int);
template void pack_b_panels<double>(double*, const double*, int64_t, bool, int64_t, int64_t,
                                    int64_t, int64_t, int);

}  // namespace nnfast

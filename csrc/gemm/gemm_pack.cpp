// Portable packing: plain loops the compiler vectorizes for the baseline ISA where it can.
#include <algorithm>
#include <cstring>

#include "gemm/gemm_kernel.h"

namespace nnfast {

namespace {

// Row p of the source feeds every panel in turn, so the source streams through memory in
// order; each panel's row is a fixed-size copy.
template <typename T, int R>
void copy_rows(T* dst, const T* src, int64_t ld, int64_t extent, int64_t k) {
  const int64_t full = extent / R * R;
  const int64_t tail = extent - full;
  for (int64_t p = 0; p < k; ++p) {
    const T* s = src + p * ld;
    for (int64_t r0 = 0; r0 < full; r0 += R) std::memcpy(dst + r0 * k + p * R, s + r0, sizeof(T) * R);
    if (tail) std::memcpy(dst + full * k + p * R, s + full, sizeof(T) * tail);
  }
}

// Blocks of 8 along p keep every source line in use while it is in L1.
template <typename T, int R>
void interleave_rows(T* dst, const T* src, int64_t ld, int64_t extent, int64_t k) {
  constexpr int kStep = 8;
  for (int64_t r0 = 0; r0 < extent; r0 += R) {
    const int rows = static_cast<int>(std::min<int64_t>(R, extent - r0));
    T* out = dst + r0 * k;
    const T* in = src + r0 * ld;
    int64_t p = 0;
    for (; p + kStep <= k; p += kStep)
      for (int r = 0; r < rows; ++r)
        for (int q = 0; q < kStep; ++q) out[(p + q) * R + r] = in[r * ld + p + q];
    for (; p < k; ++p)
      for (int r = 0; r < rows; ++r) out[p * R + r] = in[r * ld + p];
  }
}

template <typename T, int R>
void pack_r(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent, int64_t k) {
  if (interleave) interleave_rows<T, R>(dst, src, ld, extent, k);
  else copy_rows<T, R>(dst, src, ld, extent, k);
}

}  // namespace

template <typename T>
void pack_panels_portable(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                          int64_t k, int panel) {
  // Constant trip counts for the kernels' panel widths.
  switch (panel) {
    case 4: return pack_r<T, 4>(dst, src, ld, interleave, extent, k);
    case 8: return pack_r<T, 8>(dst, src, ld, interleave, extent, k);
    default: break;
  }
  for (int64_t r0 = 0; r0 < extent; r0 += panel) {
    const int64_t rows = std::min<int64_t>(panel, extent - r0);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t r = 0; r < rows; ++r)
        dst[r0 * k + p * panel + r] = interleave ? src[(r0 + r) * ld + p] : src[p * ld + r0 + r];
  }
}

template void pack_panels_portable<float>(float*, const float*, int64_t, bool, int64_t, int64_t,
                                          int);
template void pack_panels_portable<double>(double*, const double*, int64_t, bool, int64_t,
                                           int64_t, int);

}  // namespace nnfast

// The MicroKernel descriptor of an x86 ISA translation unit, assembled from the code written
// once over a vector-traits class W (the tiles, dot_rows, axpy_rows) and the AVX2 packing.
// Each *_avx2_* / *_avx512_* unit includes its traits and this header and builds its
// descriptor here, under its own compiler flags; internal linkage, as everything it uses.
#pragma once

#include "gemm/gemm_kernel.h"
#include "gemm/gemm_simd_axpy.h"
#include "gemm/gemm_simd_dot.h"
#include "gemm/gemm_simd_tile.h"
#include "gemm/gemm_x86_pack.h"

namespace nnfast {
namespace {

// Register tiles of MR rows by NV vectors; single rows in tiles of kRowVectors vectors (8
// accumulators, enough FMAs in flight to cover their latency).
template <class W, int MR, int NV>
constexpr MicroKernel<typename W::T> simd_microkernel() {
  constexpr int kRowVectors = 8;
  return {&simd_kernel<W, MR, NV>, MR, NV * W::L, &pack_panels_x86<typename W::T>,
          &simd_row_kernel<W, kRowVectors>, kRowVectors * W::L, &simd_dot_rows<W>,
          &simd_axpy_rows<W>};
}

}  // namespace
}  // namespace nnfast

// AVX2/FMA float64 microkernel: 6 rows x 8 columns (2 ymm of 4 doubles per row). Single
// rows: tiles of 1 x 32 (8 accumulators), axpy_rows and dot_rows.
#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_simd_axpy.h"
#include "gemm/gemm_simd_dot.h"
#include "gemm/gemm_simd_tile.h"
#include "gemm/gemm_x86_pack.h"

namespace nnfast {

const MicroKernel<double>& gemm_avx2_f64_6x8() {
  static constexpr MicroKernel<double> kernel{
      &simd_kernel<Avx2F64, 6, 2>, 6, 8, &pack_panels_x86<double>,
      &simd_row_kernel<Avx2F64, 8>, 32, &simd_dot_rows<Avx2F64>, &simd_axpy_rows<Avx2F64>};
  return kernel;
}

}  // namespace nnfast

// AVX2/FMA float32 microkernel: 6 rows x 16 columns (2 ymm per row), 12 accumulators + 2 B
// vectors + 1 broadcast of the 16 ymm registers (the classic Haswell/Zen tile). Single rows:
// tiles of 1 x 64 (8 accumulators, B read straight into the FMAs), axpy_rows and dot_rows.
#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_simd_axpy.h"
#include "gemm/gemm_simd_dot.h"
#include "gemm/gemm_simd_tile.h"
#include "gemm/gemm_x86_pack.h"

namespace nnfast {

const MicroKernel<float>& gemm_avx2_f32_6x16() {
  static constexpr MicroKernel<float> kernel{
      &simd_kernel<Avx2F32, 6, 2>, 6, 16, &pack_panels_x86<float>,
      &simd_row_kernel<Avx2F32, 8>, 64, &simd_dot_rows<Avx2F32>, &simd_axpy_rows<Avx2F32>};
  return kernel;
}

}  // namespace nnfast

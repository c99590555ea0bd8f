// AVX2/FMA float32 microkernel: 6 rows x 16 columns (2 ymm per row), 12 accumulators + 2 B
// vectors + 1 broadcast of the 16 ymm registers (the classic Haswell/Zen tile). Single rows:
// tiles of 1 x 64 (8 accumulators, B read straight into the FMAs), axpy_rows and dot_rows.
#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_simd_microkernel.h"

namespace nnfast {

const MicroKernel<float>& gemm_avx2_f32_6x16() {
  static constexpr MicroKernel<float> kernel = simd_microkernel<Avx2F32, 6, 2>();
  return kernel;
}

}  // namespace nnfast

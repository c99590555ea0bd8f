// AVX2/FMA float64 microkernel: 6 rows x 8 columns (2 ymm of 4 doubles per row). Single
// rows: tiles of 1 x 32 (8 accumulators), axpy_rows and dot_rows.
#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_simd_microkernel.h"

namespace nnfast {

const MicroKernel<double>& gemm_avx2_f64_6x8() {
  static constexpr MicroKernel<double> kernel = simd_microkernel<Avx2F64, 6, 2>();
  return kernel;
}

}  // namespace nnfast

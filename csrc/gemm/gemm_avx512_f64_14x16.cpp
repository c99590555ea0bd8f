// AVX-512 float64 microkernel: 14 rows x 16 columns (2 zmm of 8 doubles per row), the same
// register budget as the float32 tile. Single rows: tiles of 1 x 64 (8 accumulators),
// axpy_rows and dot_rows.
#include "gemm/gemm_avx512_vec.h"
#include "gemm/gemm_simd_microkernel.h"

namespace nnfast {

const MicroKernel<double>& gemm_avx512_f64_14x16() {
  static constexpr MicroKernel<double> kernel = simd_microkernel<Avx512F64, 14, 2>();
  return kernel;
}

}  // namespace nnfast

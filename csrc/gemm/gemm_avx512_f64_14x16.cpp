// AVX-512 float64 microkernel: 14 rows x 16 columns (2 zmm of 8 doubles per row), the same
// register budget as the float32 tile.
#include "gemm/gemm_avx512_vec.h"
#include "gemm/gemm_simd_tile.h"
#include "gemm/gemm_x86_pack.h"

namespace nnfast {

MicroKernel<double> gemm_avx512_f64_14x16() {
  return {&simd_kernel<Avx512F64, 14, 2>, 14, 16, &pack_panels_x86<double>};
}

}  // namespace nnfast

// AVX-512 float32 microkernel: 14 rows x 32 columns (2 zmm per row), 28 accumulators + 2 B
// vectors + 1 broadcast of the 32 zmm registers; per step 2 loads and 14 broadcasts feed 28
// FMAs, under the 2 loads + 2 FMAs per cycle a core sustains. Single rows: tiles of 1 x 128
// (8 accumulators, enough FMAs in flight to cover their latency), axpy_rows and dot_rows.
#include "gemm/gemm_avx512_vec.h"
#include "gemm/gemm_simd_microkernel.h"

namespace nnfast {

const MicroKernel<float>& gemm_avx512_f32_14x32() {
  static constexpr MicroKernel<float> kernel = simd_microkernel<Avx512F32, 14, 2>();
  return kernel;
}

}  // namespace nnfast

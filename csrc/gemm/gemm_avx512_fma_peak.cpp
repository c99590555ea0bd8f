// The AVX-512 FMA loop (zmm) behind fma_peak_gflops(), the yardstick for "% of peak".
#include "gemm/gemm_avx512_vec.h"
#include "gemm/gemm_fma_peak.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

// 16 chains: 2 FMA ports x 4 cycles latency, twice over.
double fma_flops_avx512(int64_t iterations) { return fma_flops_for<Avx512F32, 16>(iterations); }

}  // namespace nnfast

// The AVX2 FMA loop (ymm) behind fma_peak_gflops(), the yardstick for "% of peak".
#include "gemm/gemm_avx2_vec.h"
#include "gemm/gemm_fma_peak.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

// 12 chains cover 2 FMA ports x 5 cycles latency, the slowest of Haswell..Zen 4.
double fma_flops_avx2(int64_t iterations) { return fma_flops_for<Avx2F32, 12>(iterations); }

}  // namespace nnfast

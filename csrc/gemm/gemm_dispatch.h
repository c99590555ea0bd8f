// Which microkernels run: chosen once from cpuid (and the OS's saved vector state, xgetbv),
// overridable with the environment variable NNFAST_ISA=generic|avx2|avx512 or, for tests,
// select_gemm_isa(). A NNFAST_ISA the CPU cannot run (or an unknown name) is not an error:
// the best supported ISA is used instead and gemm_isa_env_warning() says so (the Python
// module turns it into a RuntimeWarning at import).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gemm/gemm_kernel.h"

namespace nnfast {

struct IsaKernels {
  const char* name;
  MicroKernel<float> f32;
  MicroKernel<double> f64;
  double (*fma_flops)(int64_t iterations);
};

// The kernels every gemm call uses (the first call makes the choice).
const IsaKernels& active_gemm_isa();

// ISAs this binary has and this CPU and OS can run, from the slowest to the fastest.
std::vector<std::string> supported_gemm_isas();

// Makes `name` the active ISA. False (and the active ISA unchanged) when `name` is unknown or
// cannot run here.
bool select_gemm_isa(const std::string& name);

// Empty, or why NNFAST_ISA was not honoured.
std::string gemm_isa_env_warning();

// One core's FMA throughput with the active ISA's widest vectors, float32, in GFLOP/s: the
// best of repeated timed bursts over about `seconds`.
double fma_peak_gflops(double seconds);

}  // namespace nnfast

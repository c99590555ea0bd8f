// NNFAST_SIMD_CLONES before a loop function compiles it three times, for AVX-512
// (x86-64-v4), AVX2 + FMA (x86-64-v3) and baseline x86-64, and the dynamic loader picks
// one by cpuid (GNU ifunc): one binary, never tuned to the build host. The elementwise kernels are
// plain loops the compiler vectorizes; 16 float lanes instead of SSE2's 4 is what lets
// exp/tanh-heavy ones keep up with numpy's SIMD math. Where the attribute is unavailable
// (other compilers, non-ELF targets, aarch64) the function is built once for the baseline.
// Clones may fuse a * b + c into FMA: results can differ in the last bit between machines,
// never between thread counts on one machine. Keep OpenMP pragmas out of cloned functions.
// flatten inlines every helper into each clone: a helper left out of line would be compiled
// for the baseline only, and the clone would just call it.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && \
    defined(__linux__)
#define NNFAST_SIMD_CLONES \
  __attribute__((flatten, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NNFAST_SIMD_CLONES
#endif

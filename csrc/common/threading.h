// The kernels' thread count, set from Python (nnfast.set_num_threads / NNFAST_NUM_THREADS,
// or threadpoolctl through nnfast_set_num_threads). Kept here rather than in OpenMP's ICV so
// that nnfast never changes the thread count of another library sharing the OpenMP runtime
// (torch and nnfast end up on one libgomp, whichever is imported first). Until a count is
// set, kernels follow omp_get_max_threads() of the calling thread, so OMP_NUM_THREADS,
// torch.set_num_threads and threadpoolctl's "openmp" limit apply.
#pragma once

#include <cstdint>

namespace nnfast {

// Below these element counts per thread one thread is faster than two: OpenMP's fork/join
// costs a few microseconds. Measured with benchmarks/measure_omp_threshold.py on the 2-core
// Xeon (Sapphire Rapids, KVM) in benchmarks/RESULTS_primitives.md.
constexpr int64_t kMinCheapElementsPerThread = 1 << 15;     // add, mul, max, sqrt, div
constexpr int64_t kMinCostlyElementsPerThread = 1 << 12;    // exp, log, tanh, erf

void set_num_threads(int n);  // n <= 0: follow omp_get_max_threads() again
bool num_threads_is_set();
// The configured count, as reported to Python; 1 in a forked child (see threading.cpp).
int max_threads();

// Threads to use for `work` element-operations: 1 below the size where fork/join costs more
// than it saves, and 1 in a child forked after this thread ran an OpenMP team. Call it on the
// thread that opens the parallel region: it records that this thread now owns a team.
int threads_for(int64_t work, int64_t min_work_per_thread);

// Benchmark hook (benchmarks/measure_omp_threshold.py): with a value >= 0 every threads_for
// uses it as min_work_per_thread, so both sides of the threshold can be timed; -1 restores.
void set_min_work_per_thread_override(int64_t n);

}  // namespace nnfast

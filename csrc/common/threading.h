// The kernels' thread count, set from Python (nnfast.set_num_threads / NNFAST_NUM_THREADS,
// or threadpoolctl through nnfast_set_num_threads). Kept here rather than in OpenMP's ICV so
// that nnfast never changes the thread count of another library sharing the OpenMP runtime
// (torch and nnfast end up on one libgomp, whichever is imported first). Until a count is
// set, kernels follow omp_get_max_threads() of the calling thread, so OMP_NUM_THREADS,
// torch.set_num_threads and threadpoolctl's "openmp" limit apply.
#pragma once

#include <chrono>
#include <cstdint>

#include "common/contention.h"

namespace nnfast {

// Below these element counts per thread one thread is faster than two: a libgomp fork/join
// costs about 1 us. Measured with benchmarks/measure_omp_threshold.py on the 2-core Xeon
// (AVX-512, KVM guest; benchmarks/RESULTS_primitives.md): two threads win from 32768
// elements for relu and SGD (0.92x, 0.78x the one-thread time), and from 4096 for tanh
// (1.00x) and softmax (0.73x).
constexpr int64_t kMinCheapElementsPerThread = 1 << 14;   // add, mul, max, sqrt, div
constexpr int64_t kMinCostlyElementsPerThread = 1 << 11;  // exp, log, tanh, erf

void set_num_threads(int n);  // n <= 0: follow omp_get_max_threads() again
bool num_threads_is_set();
// The configured count, as reported to Python; 1 in a forked child (see threading.cpp).
int max_threads();

// Threads to use for `work` element-operations: 1 below the size where fork/join costs more
// than it saves, 1 in a child forked after this thread ran an OpenMP team, and 1 while
// backing off from contention (contention.h). Call it on the thread that opens the parallel
// region: it records that this thread now owns a team.
int threads_for(int64_t work, int64_t min_work_per_thread);

// The opener of every parallel region of more than one thread reports its timings here (see
// contention.h). Results do not change with the verdict: every kernel gives bitwise the same
// result on any number of threads. NNFAST_ADAPTIVE_THREADS=0 in the environment when the
// module loads turns the back-off off: teams then follow only the thread count and the work.
void report_team_times(const TeamTimes& times);
ContentionStats contention_stats();

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#ifdef NNFAST_TEST_HOOKS
// For benchmarks/measure_omp_threshold.py, in a build with NNFAST_TEST_HOOKS=1: with a value
// >= 0 every threads_for uses it as min_work_per_thread and ignores the back-off, so both
// sides of the threshold can be timed; -1 restores.
void set_min_work_per_thread_override(int64_t n);
#endif

}  // namespace nnfast

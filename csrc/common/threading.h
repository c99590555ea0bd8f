// The kernels' thread count, set from Python (nnfast.set_num_threads / NNFAST_NUM_THREADS,
// or threadpoolctl through nnfast_set_num_threads). Kept here rather than in OpenMP's ICV so
// that nnfast never changes the thread count of another library sharing the OpenMP runtime
// (torch and nnfast end up on one libgomp, whichever is imported first). Until a count is
// set, kernels follow omp_get_max_threads() of the calling thread, so OMP_NUM_THREADS,
// torch.set_num_threads and threadpoolctl's "openmp" limit apply.
#pragma once

#include <chrono>
#include <cstdint>

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
// backing off from contention (report_team_times). Call it on the thread that opens the
// parallel region: it records that this thread now owns a team.
int threads_for(int64_t work, int64_t min_work_per_thread);

// Contention backoff. When the cores are shared with other work (or with more threads than
// cores), a team member that is not running delays the whole region by a scheduler time
// slice, milliseconds for a kernel of microseconds: at the start (libgomp's opener waits
// until the previous region's workers are back in the pool) or at the end (it waits for
// their share). The thread that opened a region reports when it got to run its share, how
// long that took and when the team finished; a delay far beyond the work means a member
// was not running, and threads_for answers 1 for a while (100 ms, doubling up to 3.2 s
// while it recurs). Results do not change: every kernel gives bitwise the same result on
// any number of threads.
struct TeamTimes {
  int64_t start = 0;           // before the region opened
  int64_t opener_started = 0;  // the opener starts its share
  int64_t opener_done = 0;     // the opener finished its share
  int64_t end = 0;             // after the region closed
};
void report_team_times(const TeamTimes& times);
struct ContentionStats {
  int64_t contended_regions;  // regions delayed beyond the limit
  bool backing_off;           // threads_for answers 1 now
  int64_t next_backoff_ns;    // how long the next contended region makes it answer 1
};
ContentionStats contention_stats();

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Benchmark hook (benchmarks/measure_omp_threshold.py): with a value >= 0 every threads_for
// uses it as min_work_per_thread and ignores the backoff, so both sides of the threshold
// can be timed; -1 restores.
void set_min_work_per_thread_override(int64_t n);

}  // namespace nnfast

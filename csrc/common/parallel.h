// Parallel loops for the kernels. They open an OpenMP region only for more than one thread
// (a forked child must not open one, and a one-thread region still costs the runtime call),
// every team member flushes denormals like the calling thread, so a value never depends
// on which thread computed it, and the opener reports how long it waited for the team
// (report_team_times in threading.h; contention.h judges it). The bodies must not throw,
// allocate or call Python.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "common/fpu_guard.h"
#include "common/threading.h"

namespace nnfast {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// body(begin, end) on contiguous blocks covering [0, n), one per thread; block edges are
// multiples of 16 elements so threads never share a cache line of output.
template <typename Body>
void parallel_ranges(int64_t n, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && n > 16) {
    TeamTimes times;
    times.start = now_ns();
#pragma omp parallel num_threads(threads)
    {
      FpuGuard fpu;
      const bool opener = omp_get_thread_num() == 0;
      const int64_t team = omp_get_num_threads();
      if (opener) {
        times.opener_started = now_ns();
        times.team = static_cast<int>(team);
      }
      const int64_t per = ceil_div(ceil_div(n, team), 16) * 16;
      const int64_t begin = std::min<int64_t>(n, omp_get_thread_num() * per);
      const int64_t end = std::min<int64_t>(n, begin + per);
      if (begin < end) body(begin, end);
      if (opener) times.opener_done = now_ns();
    }
    times.end = now_ns();
    report_team_times(times);
    return;
  }
#endif
  (void)threads;
  if (n > 0) body(int64_t{0}, n);
}

// body(i) for every task i in [0, count), tasks spread statically over the threads.
template <typename Body>
void parallel_tasks(int64_t count, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    TeamTimes times;
    times.start = now_ns();
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, count)))
    {
      FpuGuard fpu;
      const bool opener = omp_get_thread_num() == 0;
      if (opener) {
        times.opener_started = now_ns();
        times.team = omp_get_num_threads();
      }
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < count; ++i) body(i);
      if (opener) times.opener_done = now_ns();
    }
    times.end = now_ns();
    report_team_times(times);
    return;
  }
#endif
  (void)threads;
  for (int64_t i = 0; i < count; ++i) body(i);
}

}  // namespace nnfast

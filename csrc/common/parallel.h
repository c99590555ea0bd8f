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

#ifdef _OPENMP
// share(thread, team) on each member of a team of `threads`, every member flushing
// denormals like the calling thread; the opener reports how long it waited for the others.
template <typename Share>
void run_team(int threads, Share&& share) {
  TeamTimes times;
  times.start = now_ns();
#pragma omp parallel num_threads(threads)
  {
    FpuGuard fpu;
    const int thread = omp_get_thread_num(), team = omp_get_num_threads();
    if (thread == 0) {
      times.opener_started = now_ns();
      times.team = team;
    }
    share(int64_t{thread}, int64_t{team});
    if (thread == 0) times.opener_done = now_ns();
  }
  times.end = now_ns();
  report_team_times(times);
}
#endif

// body(begin, end) on contiguous blocks covering [0, n), one per thread; block edges are
// multiples of 16 elements so threads never share a cache line of output.
template <typename Body>
void parallel_ranges(int64_t n, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && n > 16) {
    run_team(threads, [&](int64_t thread, int64_t team) {
      const int64_t per = ceil_div(ceil_div(n, team), 16) * 16;
      const int64_t begin = std::min<int64_t>(n, thread * per);
      const int64_t end = std::min<int64_t>(n, begin + per);
      if (begin < end) body(begin, end);
    });
    return;
  }
#endif
  (void)threads;
  if (n > 0) body(int64_t{0}, n);
}

// body(i) for every task i in [0, count), each thread taking a contiguous run of tasks.
template <typename Body>
void parallel_tasks(int64_t count, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    run_team(static_cast<int>(std::min<int64_t>(threads, count)),
             [&](int64_t thread, int64_t team) {
               const int64_t per = ceil_div(count, team);
               const int64_t end = std::min<int64_t>(count, (thread + 1) * per);
               for (int64_t i = thread * per; i < end; ++i) body(i);
             });
    return;
  }
#endif
  (void)threads;
  for (int64_t i = 0; i < count; ++i) body(i);
}

}  // namespace nnfast

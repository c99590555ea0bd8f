#include "common/threading.h"

#include <algorithm>
#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define NNFAST_HAVE_PTHREAD_ATFORK 1
#endif

namespace nnfast {

namespace {

std::atomic<int> g_num_threads{0};  // 0: not set, follow omp_get_max_threads()
std::atomic<int64_t> g_min_work_override{-1};

// A region is contended when the opener started its share this late, or then waited for the
// others more than twice its own share plus this: a woken libgomp worker starts within tens
// of microseconds, a descheduled one after a time slice (measured: 4-17 ms on the shared
// 2-core machine).
constexpr int64_t kLateNs = 500'000;
// The first region after an idle gap is not judged: libgomp's idle workers spin briefly and
// then sleep, and on a virtual machine a sleeping vCPU can take longer than kLateNs to be
// woken (its host schedules it again). Back-to-back regions, which contention slows, are.
constexpr int64_t kIdleNs = 2'000'000;
std::atomic<int64_t> g_last_region_end_ns{0};
constexpr int64_t kFirstBackoffNs = 100'000'000;
constexpr int64_t kMaxBackoffNs = 3'200'000'000;
std::atomic<int64_t> g_single_until_ns{0};
std::atomic<int64_t> g_backoff_ns{kFirstBackoffNs};
std::atomic<int64_t> g_contended_regions{0};

// libgomp keeps one thread pool per thread that opened a parallel region. After fork() the
// child inherits that pool's bookkeeping but not its threads, and the next region of more
// than one thread on the forking thread waits for them forever (GCC libgomp does not support
// fork; a region of one thread still works). So a child forked by a thread that had run a
// team stays single-threaded.
thread_local bool t_owns_team = false;
std::atomic<bool> g_forked_after_team{false};

#ifdef NNFAST_HAVE_PTHREAD_ATFORK
void on_fork_child() {
  if (t_owns_team) g_forked_after_team.store(true);
}
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif

int openmp_default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

bool num_threads_is_set() { return g_num_threads.load() > 0; }

int max_threads() {
  if (g_forked_after_team.load()) return 1;
  const int n = g_num_threads.load();
  return n > 0 ? n : openmp_default_threads();
}

void set_min_work_per_thread_override(int64_t n) { g_min_work_override.store(n < 0 ? -1 : n); }

void report_team_times(const TeamTimes& t) {
  const int64_t previous_end = g_last_region_end_ns.exchange(t.end, std::memory_order_relaxed);
  if (t.start - previous_end > kIdleNs) return;
  const int64_t late_start = t.opener_started - t.start;
  const int64_t own = t.opener_done - t.opener_started, wait = t.end - t.opener_done;
  if (late_start <= kLateNs && wait <= 2 * own + kLateNs) {
    g_backoff_ns.store(kFirstBackoffNs, std::memory_order_relaxed);
    return;
  }
  g_contended_regions.fetch_add(1, std::memory_order_relaxed);
  const int64_t backoff = g_backoff_ns.load(std::memory_order_relaxed);
  g_single_until_ns.store(now_ns() + backoff, std::memory_order_relaxed);
  g_backoff_ns.store(std::min(2 * backoff, kMaxBackoffNs), std::memory_order_relaxed);
}

ContentionStats contention_stats() {
  return {g_contended_regions.load(), now_ns() < g_single_until_ns.load(), g_backoff_ns.load()};
}

int threads_for(int64_t work, int64_t min_work_per_thread) {
  const int64_t override_value = g_min_work_override.load(std::memory_order_relaxed);
  if (override_value >= 0) min_work_per_thread = override_value;
  const int64_t by_work = work / std::max<int64_t>(min_work_per_thread, 1);
  const int threads =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_threads(), by_work)));
  if (threads == 1) return 1;
  if (override_value < 0 && now_ns() < g_single_until_ns.load(std::memory_order_relaxed))
    return 1;
  t_owns_team = true;
  return threads;
}

}  // namespace nnfast

// threadpoolctl reads and limits nnfast's pool through these (nnfast/backends/cpp_backend.py
// registers the controller); -fvisibility=hidden hides everything else.
#if defined(_WIN32)
#define NNFAST_EXPORT __declspec(dllexport)
#else
#define NNFAST_EXPORT __attribute__((visibility("default")))
#endif

extern "C" NNFAST_EXPORT int nnfast_get_num_threads() { return nnfast::max_threads(); }
extern "C" NNFAST_EXPORT void nnfast_set_num_threads(int n) { nnfast::set_num_threads(n); }

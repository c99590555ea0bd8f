#include "common/threading.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

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
#ifdef NNFAST_TEST_HOOKS
std::atomic<int64_t> g_min_work_override{-1};
#endif

bool adaptive_from_environment() {
  const char* value = std::getenv("NNFAST_ADAPTIVE_THREADS");
  return value == nullptr || std::strcmp(value, "0") != 0;
}
const bool g_adaptive = adaptive_from_environment();
ContentionMonitor g_monitor;

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

#ifdef NNFAST_TEST_HOOKS
void set_min_work_per_thread_override(int64_t n) { g_min_work_override.store(n < 0 ? -1 : n); }
#endif

void report_team_times(const TeamTimes& times) {
  if (g_adaptive) g_monitor.report(times);
}

ContentionStats contention_stats() { return g_monitor.stats(now_ns()); }

int threads_for(int64_t work, int64_t min_work_per_thread) {
  bool may_back_off = g_adaptive;
#ifdef NNFAST_TEST_HOOKS
  const int64_t override_value = g_min_work_override.load(std::memory_order_relaxed);
  if (override_value >= 0) {
    min_work_per_thread = override_value;
    may_back_off = false;
  }
#endif
  const int64_t by_work = work / std::max<int64_t>(min_work_per_thread, 1);
  const int threads =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_threads(), by_work)));
  if (threads == 1) return 1;
  if (may_back_off && g_monitor.backing_off(now_ns())) return 1;
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

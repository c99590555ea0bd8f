#include "common/threading.h"

#include <algorithm>
#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnfast {

namespace {
int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
std::atomic<int> g_num_threads{0};  // 0: not set yet, use the OpenMP default
}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

int num_threads() {
  int n = g_num_threads.load();
  return n > 0 ? n : default_threads();
}

int threads_for(int64_t work, int64_t min_work_per_thread) {
  int64_t by_work = work / std::max<int64_t>(min_work_per_thread, 1);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), by_work)));
}

}  // namespace nnfast

// The kernels' thread count, set from Python (nnfast.set_num_threads / NNFAST_NUM_THREADS).
// Kept here rather than in OpenMP's global ICV so that nnfast never changes the thread
// count of another OpenMP library sharing the runtime (numpy's OpenBLAS, torch).
#pragma once

#include <cstdint>

namespace nnfast {

void set_num_threads(int n);
int num_threads();

// Threads to use for `work` element-operations: 1 below the size where OpenMP's fork/join
// (a few microseconds) costs more than it saves.
int threads_for(int64_t work, int64_t min_work_per_thread);

}  // namespace nnfast

// The bias gradient of a Dense layer: column sums of the output gradient.
#pragma once

#include <cstdint>

namespace nnfast {

// dbias (C), dout (N, C): dbias = colsum(dout) + beta * dbias (beta == 0 ignores dbias).
// Each column is summed in double in fixed row chunks combined in order, so the result is
// bitwise the same on any number of threads.
template <typename T>
void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta);

}  // namespace nnfast

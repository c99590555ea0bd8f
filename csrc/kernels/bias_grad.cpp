#include "kernels/bias_grad.h"

#include "common/column_sums.h"
#include "common/threading.h"

namespace nnfast {

template <typename T>
void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta) {
  // Sums go to a stack buffer in blocks of columns, so dbias is read (for beta) only after.
  constexpr int64_t kColumns = 1024;
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);
  double sums[kColumns];
  for (int64_t c0 = 0; c0 < C; c0 += kColumns) {
    const int64_t width = std::min(kColumns, C - c0);
    const T* block = dout + c0;
    column_sums(sums, N, width, threads,
                [=](int64_t r, int64_t c) { return static_cast<double>(block[r * C + c]); });
    for (int64_t c = 0; c < width; ++c) {
      const T sum = static_cast<T>(sums[c]);
      dbias[c0 + c] = beta != T(0) ? sum + beta * dbias[c0 + c] : sum;
    }
  }
}

template void bias_grad<float>(float*, const float*, int64_t, int64_t, float);
template void bias_grad<double>(double*, const double*, int64_t, int64_t, double);

}  // namespace nnfast

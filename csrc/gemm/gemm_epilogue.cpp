#include "common/activation.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

template <typename T>
void activate_tile(T* c, int64_t ldc, int m, int n, Activation act, T slope) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = activate(act, c[i * ldc + j], slope);
}

template void activate_tile<float>(float*, int64_t, int, int, Activation, float);
template void activate_tile<double>(double*, int64_t, int, int, Activation, double);

}  // namespace nnfast

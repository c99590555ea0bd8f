// The activations the microkernels do not vectorize in registers, applied to a tile right
// after its store. The loops take the activation as a template argument so the branch-free
// exp/tanh of vector_math.h vectorize, cloned per ISA like the elementwise kernels.
#include "common/activation.h"
#include "common/simd_clones.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

namespace {

template <Activation A, typename T>
NNFAST_SIMD_CLONES void activate_rows(T* c, int64_t ldc, int64_t m, int64_t n, T slope) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = activate(A, c[i * ldc + j], slope);
}

}  // namespace

template <typename T>
void activate_tile(T* c, int64_t ldc, int64_t m, int64_t n, Activation act, T slope) {
  if (act == Activation::identity) return;
  with_activation(act, [&](auto a) { activate_rows<decltype(a)::value>(c, ldc, m, n, slope); });
}

template void activate_tile<float>(float*, int64_t, int64_t, int64_t, Activation, float);
template void activate_tile<double>(double*, int64_t, int64_t, int64_t, Activation, double);

}  // namespace nnfast

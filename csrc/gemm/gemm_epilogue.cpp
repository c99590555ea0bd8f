// The activations the microkernels do not vectorize in registers, applied to a tile right
// after its store. The loops take the activation as a template argument so the branch-free
// exp/tanh of vector_math.h vectorize, cloned per ISA like the elementwise kernels.
#include "common/activation.h"
#include "common/simd_clones.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

namespace {

template <Activation A, typename T>
NNFAST_SIMD_CLONES void activate_rows(T* c, int64_t ldc, int m, int n, T slope) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = activate(A, c[i * ldc + j], slope);
}

}  // namespace

template <typename T>
void activate_tile(T* c, int64_t ldc, int m, int n, Activation act, T slope) {
  switch (act) {
    case Activation::relu: return activate_rows<Activation::relu>(c, ldc, m, n, slope);
    case Activation::leaky_relu: return activate_rows<Activation::leaky_relu>(c, ldc, m, n, slope);
    case Activation::sigmoid: return activate_rows<Activation::sigmoid>(c, ldc, m, n, slope);
    case Activation::tanh: return activate_rows<Activation::tanh>(c, ldc, m, n, slope);
    case Activation::gelu: return activate_rows<Activation::gelu>(c, ldc, m, n, slope);
    case Activation::gelu_tanh: return activate_rows<Activation::gelu_tanh>(c, ldc, m, n, slope);
    default: return;
  }
}

template void activate_tile<float>(float*, int64_t, int, int, Activation, float);
template void activate_tile<double>(double*, int64_t, int, int, Activation, double);

}  // namespace nnfast

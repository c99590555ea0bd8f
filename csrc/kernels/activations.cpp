#include "kernels/activations.h"

#include "common/threading.h"

namespace nnfast {

namespace {
// Elementwise work below this per thread is faster single-threaded.
constexpr int64_t kMinElementsPerThread = 1 << 14;
}  // namespace

template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope) {
  const int threads = threads_for(n, kMinElementsPerThread);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = activate(act, inp[i], negative_slope);
}

template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope) {
  const int threads = threads_for(n, kMinElementsPerThread);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    dinp[i] = dout[i] * activate_grad(act, inp[i], out[i], negative_slope);
}

template void activation_forward<float>(float*, const float*, int64_t, Activation, float);
template void activation_forward<double>(double*, const double*, int64_t, Activation, double);
template void activation_backward<float>(float*, const float*, const float*, const float*,
                                         int64_t, Activation, float);
template void activation_backward<double>(double*, const double*, const double*,
                                          const double*, int64_t, Activation, double);

}  // namespace nnfast

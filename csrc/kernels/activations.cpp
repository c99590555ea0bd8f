#include "kernels/activations.h"

#include "common/parallel.h"
#include "common/threading.h"
#include "kernels/softmax_row.h"

namespace nnfast {

namespace {
bool is_costly(Activation act) {
  return act != Activation::identity && act != Activation::relu &&
         act != Activation::leaky_relu;
}
int64_t min_elements_per_thread(Activation act) {
  return is_costly(act) ? kMinCostlyElementsPerThread : kMinCheapElementsPerThread;
}
}  // namespace

template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope) {
  parallel_ranges(n, threads_for(n, min_elements_per_thread(act)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = activate(act, inp[i], negative_slope);
  });
}

template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope) {
  parallel_ranges(n, threads_for(n, min_elements_per_thread(act)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      dinp[i] = dout[i] * activate_grad(act, inp[i], out[i], negative_slope);
  });
}

template <typename T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  parallel_ranges(N, threads, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const T* x = inp + r * C;
      T* y = out + r * C;
      normalize_row(y, C, shifted_exp_row(y, x, C, row_max(x, C)));
    }
  });
}

template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);
  parallel_ranges(N, threads, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const T* g = dout + r * C;
      const T* y = out + r * C;
      T* dx = dinp + r * C;
      double dot = 0.0;
      for (int64_t j = 0; j < C; ++j) dot += static_cast<double>(g[j]) * y[j];
      const T d = static_cast<T>(dot);
      for (int64_t j = 0; j < C; ++j) dx[j] = y[j] * (g[j] - d);
    }
  });
}

#define NNFAST_INSTANTIATE(T)                                                                 \
  template void activation_forward<T>(T*, const T*, int64_t, Activation, T);                 \
  template void activation_backward<T>(T*, const T*, const T*, const T*, int64_t, Activation, \
                                       T);                                                    \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t);                           \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast

#include "kernels/activations.h"

#include <algorithm>

#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"
#include "kernels/softmax_row.h"

namespace nnfast {

namespace {

constexpr bool is_costly(Activation act) {
  return act != Activation::identity && act != Activation::relu &&
         act != Activation::leaky_relu;
}

// The loops take the activation as a template argument: with the switch in activate()
// folded away, every one vectorizes.
template <Activation A, typename T>
NNFAST_SIMD_CLONES void forward_range(T* out, const T* inp, int64_t begin, int64_t end,
                                      T slope) {
  for (int64_t i = begin; i < end; ++i) out[i] = activate(A, inp[i], slope);
}

template <Activation A, typename T>
NNFAST_SIMD_CLONES void backward_range(T* dinp, const T* dout, const T* inp, const T* out,
                                       int64_t begin, int64_t end, T slope) {
  for (int64_t i = begin; i < end; ++i)
    dinp[i] = dout[i] * activate_grad(A, inp[i], out[i], slope);
}

template <Activation A, typename T>
void forward_loop(T* out, const T* inp, int64_t n, T slope) {
  const int threads = threads_for(n, is_costly(A) ? kMinCostlyElementsPerThread
                                                  : kMinCheapElementsPerThread);
  parallel_ranges(n, threads,
                  [&](int64_t b, int64_t e) { forward_range<A>(out, inp, b, e, slope); });
}

// A derivative that needs the input recomputes exp, tanh or erf from it; the others are
// arithmetic on the output.
template <Activation A, typename T>
void backward_loop(T* dinp, const T* dout, const T* inp, const T* out, int64_t n, T slope) {
  const int threads = threads_for(n, grad_needs_input(A, 1.0) ? kMinCostlyElementsPerThread
                                                              : kMinCheapElementsPerThread);
  parallel_ranges(n, threads, [&](int64_t b, int64_t e) {
    backward_range<A>(dinp, dout, inp, out, b, e, slope);
  });
}

// inp (rows, C), out (rows, C) from row begin to end
template <typename T>
NNFAST_SIMD_CLONES void softmax_rows(T* out, const T* inp, int64_t begin, int64_t end,
                                     int64_t C) {
  T max[kSoftmaxBlockRows];
  double sums[kSoftmaxBlockRows];
  const int64_t block = softmax_block_rows(C);
  for (int64_t r0 = begin; r0 < end; r0 += block) {
    const int64_t R = std::min(block, end - r0);
    for (int64_t r = 0; r < R; ++r) max[r] = row_max(inp + (r0 + r) * C, C);
    softmax_block(out + r0 * C, inp + r0 * C, R, C, max, sums);
  }
}

template <typename T>
NNFAST_SIMD_CLONES void softmax_backward_rows(T* dinp, const T* dout, const T* out,
                                              int64_t begin, int64_t end, int64_t C) {
  for (int64_t r = begin; r < end; ++r) {
    const T* g = dout + r * C;
    const T* y = out + r * C;
    T* dx = dinp + r * C;
    double dot = 0.0;
    for (int64_t j = 0; j < C; ++j) dot += static_cast<double>(g[j]) * y[j];
    const T d = static_cast<T>(dot);
    for (int64_t j = 0; j < C; ++j) dx[j] = y[j] * (g[j] - d);
  }
}

}  // namespace

template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope) {
  with_activation(act, [&](auto a) {
    forward_loop<decltype(a)::value>(out, inp, n, negative_slope);
  });
}

template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T slope) {
  with_activation(act, [&](auto a) {
    backward_loop<decltype(a)::value>(dinp, dout, inp, out, n, slope);
  });
}

template <typename T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCostlyElementsPerThread);
  parallel_ranges(N, threads, [&](int64_t b, int64_t e) { softmax_rows(out, inp, b, e, C); });
}

template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  const int threads = threads_for(N * C, kMinCheapElementsPerThread);
  parallel_ranges(N, threads,
                  [&](int64_t b, int64_t e) { softmax_backward_rows(dinp, dout, out, b, e, C); });
}

NNFAST_INSTANTIATE_ACTIVATIONS(float)
NNFAST_INSTANTIATE_ACTIVATIONS(double)

}  // namespace nnfast

// The declarations of the activations kernels, one contract for every device: included inside
// namespace nnfast by kernels/activations.h (host pointers) and inside nnfast::gpu by
// cuda/activations.h (device pointers). No include guard: it is meant for one inclusion per
// namespace, and includes nothing itself; the instantiation list below is one macro,
// defined once.

// inp (n), out (n)
template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope);

// dinp (n), dout (n), inp (n), out (n): dinp = dout * act'(inp)
template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope);

// inp (N, C), out (N, C): each row of out = exp(row - max) / sum. out may be inp.
template <typename T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C);

// dinp (N, C), dout (N, C), out (N, C): dinp = out * (dout - rowsum(dout * out)).
// dinp may be dout or out.
template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);

// The explicit instantiations each device's source makes, for T = float and double.
#ifndef NNFAST_INSTANTIATE_ACTIVATIONS
#define NNFAST_INSTANTIATE_ACTIVATIONS(T)                                                     \
  template void activation_forward<T>(T*, const T*, int64_t, Activation, T);                  \
  template void activation_backward<T>(T*, const T*, const T*, const T*, int64_t, Activation, \
                                       T);                                                    \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t);                           \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
#endif

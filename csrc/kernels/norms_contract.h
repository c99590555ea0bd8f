// The declarations of the norms kernels, one contract for every device: included inside
// namespace nnfast by kernels/norms.h (host pointers) and inside nnfast::gpu by
// cuda/norms.h (device pointers). No include guard: it is meant for one inclusion per
// namespace, and includes nothing itself; the instantiation list below is one macro,
// defined once.

// x (n): sum of x^2, each square taken in double
template <typename T>
double sum_squares(const T* x, int64_t n);

// x (n): sum of |x|, in double
template <typename T>
double sum_abs(const T* x, int64_t n);

// x (n): x *= alpha
template <typename T>
void scale_inplace(T* x, int64_t n, T alpha);

// x (n): x = min(max(x, lo), hi); NaN stays NaN
template <typename T>
void clip_inplace(T* x, int64_t n, T lo, T hi);

// w (n), grad (n): grad += l1 sign(w) + l2x2 w, sign(0) = 0, sign(NaN) = NaN
template <typename T>
void weight_penalty_backward(T* grad, const T* w, int64_t n, T l1, T l2x2);

// The explicit instantiations each device's source makes, for T = float and double.
#ifndef NNFAST_INSTANTIATE_NORMS
#define NNFAST_INSTANTIATE_NORMS(T)                                      \
  template double sum_squares<T>(const T*, int64_t);                     \
  template double sum_abs<T>(const T*, int64_t);                         \
  template void scale_inplace<T>(T*, int64_t, T);                        \
  template void clip_inplace<T>(T*, int64_t, T, T);                      \
  template void weight_penalty_backward<T>(T*, const T*, int64_t, T, T);
#endif

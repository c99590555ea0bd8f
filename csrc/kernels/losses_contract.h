// The declarations of the losses kernels, one contract for every device: included inside
// namespace nnfast by kernels/losses.h (host pointers) and inside nnfast::gpu by
// cuda/losses.h (device pointers). No include guard: it is meant for one inclusion per
// namespace, and includes nothing itself; the instantiation list below is one macro,
// defined once.

// pred (n), target (n): mean((pred - target)^2)
template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n);

// dpred (n), pred (n), target (n): dpred = 2 (pred - target) / n
template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n);

// prob (n), target (n): -mean(t log p + (1 - t) log(1 - p)), each log clamped at -100 as
// torch.nn.BCELoss does, so p = 0 or 1 gives a finite loss.
template <typename T>
double bce_forward(const T* prob, const T* target, int64_t n);

// dprob (n), prob (n), target (n): dprob = (p - t) / max(p (1 - p), 1e-12) / n
template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n);

// logits (n), target (n): mean(max(z, 0) - z t + log1p(exp(-|z|))), stable at any z
template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t n);

// dlogits (n), logits (n), target (n): dlogits = (sigmoid(z) - t) / n
template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n);

// The explicit instantiations each device's source makes, for T = float and double.
#ifndef NNFAST_INSTANTIATE_LOSSES
#define NNFAST_INSTANTIATE_LOSSES(T)                                          \
  template double mse_forward<T>(const T*, const T*, int64_t);                \
  template void mse_backward<T>(T*, const T*, const T*, int64_t);             \
  template double bce_forward<T>(const T*, const T*, int64_t);                \
  template void bce_backward<T>(T*, const T*, const T*, int64_t);             \
  template double bce_with_logits_forward<T>(const T*, const T*, int64_t);    \
  template void bce_with_logits_backward<T>(T*, const T*, const T*, int64_t);
#endif

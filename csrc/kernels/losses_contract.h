// The declarations of the losses kernels, one contract for every device: included inside
// namespace nnfast by kernels/losses.h (host pointers) and inside nnfast::gpu by
// cuda/losses.h (device pointers). No include guard: it is meant for one inclusion per
// namespace, and includes nothing itself (its includer provides kernels/loss_weights.h);
// the instantiation list below is one macro, defined once.
//
// Every loss reads a (rows, cols) prediction and target, n = rows * cols elements; w holds
// the optional weights (kernels/loss_weights.h): s_i = w.sample[i] of row i, else 1.

// pred (rows, cols), target (rows, cols): sum(s_i (pred - target)^2) / n
template <typename T>
double mse_forward(const T* pred, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w);

// dpred (rows, cols), pred, target (rows, cols): dpred = 2 s_i (pred - target) / n
template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w);

// prob (rows, cols), target (rows, cols): -sum(s_i (t log p + (1 - t) log(1 - p))) / n, each
// log clamped at -100 as torch.nn.BCELoss does, so p = 0 or 1 gives a finite loss.
template <typename T>
double bce_forward(const T* prob, const T* target, int64_t rows, int64_t cols,
                   LossWeights<T> w);

// dprob, prob, target (rows, cols): dprob = s_i (p - t) / max(p (1 - p), 1e-12) / n
template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t rows, int64_t cols,
                  LossWeights<T> w);

// logits (rows, cols), target (rows, cols): sum(s_i l) / n, stable at any z, with
// l = max(z, 0) - z t + log1p(exp(-|z|)), or with pos_weight q_j = w.per_class[j]
// l = (1 - t) z + (1 + (q_j - 1) t) softplus(-z), as torch.nn.BCEWithLogitsLoss
template <typename T>
double bce_with_logits_forward(const T* logits, const T* target, int64_t rows, int64_t cols,
                               LossWeights<T> w);

// dlogits, logits, target (rows, cols): dlogits = s_i ((1 + (q_j - 1) t) sigmoid(z) - q_j t) / n
// (sigmoid(z) - t without pos_weight)
template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t rows,
                              int64_t cols, LossWeights<T> w);

// The explicit instantiations each device's source makes, for T = float and double.
#ifndef NNFAST_INSTANTIATE_LOSSES
#define NNFAST_INSTANTIATE_LOSSES(T)                                                          \
  template double mse_forward<T>(const T*, const T*, int64_t, int64_t, LossWeights<T>);       \
  template void mse_backward<T>(T*, const T*, const T*, int64_t, int64_t, LossWeights<T>);    \
  template double bce_forward<T>(const T*, const T*, int64_t, int64_t, LossWeights<T>);       \
  template void bce_backward<T>(T*, const T*, const T*, int64_t, int64_t, LossWeights<T>);    \
  template double bce_with_logits_forward<T>(const T*, const T*, int64_t, int64_t,            \
                                             LossWeights<T>);                                 \
  template void bce_with_logits_backward<T>(T*, const T*, const T*, int64_t, int64_t,         \
                                            LossWeights<T>);
#endif

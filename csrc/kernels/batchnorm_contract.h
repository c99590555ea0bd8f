// The declarations of the batchnorm kernels, one contract for every device: included inside
// namespace nnfast by kernels/batchnorm.h (host pointers) and inside nnfast::gpu by
// cuda/batchnorm.h (device pointers). No include guard: it is meant for one inclusion per
// namespace, and includes nothing itself; the instantiation list below is one macro,
// defined once.

// x (N, C) with N >= 2, out (N, C), mean (C), inv_std (C), running_mean (C), running_var (C):
// mean = sum(x) / N; var = sum((x - mean)^2) / N; inv_std = 1 / sqrt(var + eps);
// out = (x - mean) inv_std gamma + beta; running_mean = (1 - m) running_mean + m mean;
// running_var = (1 - m) running_var + m var N / (N - 1). out may be x.
template <typename T>
void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean, T* running_var,
                             const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                             double momentum, double eps);

// x (N, C), out (N, C), running_mean (C), running_var (C):
// out = (x - running_mean) (1 / sqrt(running_var + eps)) gamma + beta. out may be x.
template <typename T>
void batchnorm_forward_eval(T* out, const T* x, const T* running_mean, const T* running_var,
                            const T* gamma, const T* beta, int64_t N, int64_t C, double eps);

// dx (N, C), dgamma (C) or null, dbeta (C) or null, dout (N, C), x (N, C), mean (C),
// inv_std (C), gamma (C) or null: x_hat = (x - mean) inv_std; dbeta += sum(dout);
// dgamma += sum(dout x_hat); training: dx = gamma inv_std / N (N dout - sum(dout)
// - x_hat sum(dout x_hat)); eval: dx = dout gamma inv_std. dx may be dout or x.
template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                        const T* inv_std, const T* gamma, int64_t N, int64_t C, bool training);

// The explicit instantiations each device's source makes, for T = float and double.
#ifndef NNFAST_INSTANTIATE_BATCHNORM
#define NNFAST_INSTANTIATE_BATCHNORM(T)                                                      \
  template void batchnorm_forward_train<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, \
                                           int64_t, int64_t, double, double);                \
  template void batchnorm_forward_eval<T>(T*, const T*, const T*, const T*, const T*,        \
                                          const T*, int64_t, int64_t, double);               \
  template void batchnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                      const T*, int64_t, int64_t, bool);
#endif

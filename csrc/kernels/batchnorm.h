// Batch normalization over the rows of (N, C) input, as torch.nn.BatchNorm1d, forward and
// backward side by side. Column statistics are summed in double over fixed row chunks
// (common/column_sums.h): bitwise the same on any number of threads.
#pragma once

#include <cstdint>

namespace nnfast {

// inp (N, C) with N >= 2, out (N, C); gamma, beta (C) or null (scale 1, shift 0);
// running_mean, running_var (C) updated in place; mean, inv_std (C) written for the backward:
// mean = colsum(inp) / N; var = colsum((inp - mean)^2) / N; inv_std = 1 / sqrt(var + eps);
// out = (inp - mean) * inv_std * gamma + beta;
// running_mean = (1 - momentum) running_mean + momentum mean;
// running_var = (1 - momentum) running_var + momentum N / (N - 1) var.
template <typename T>
void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean, T* running_var,
                             const T* inp, const T* gamma, const T* beta, int64_t N, int64_t C,
                             double momentum, double eps);

// inp (N, C), out (N, C); gamma, beta (C) or null; running_mean, running_var (C);
// inv_std (C) written, 1 / sqrt(running_var + eps) in T, as the backward takes it:
// out = (inp - running_mean) * inv_std * gamma + beta.
template <typename T>
void batchnorm_forward_eval(T* out, T* inv_std, const T* inp, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, int64_t N, int64_t C,
                            double eps);

// dinp (N, C); dgamma, dbeta (C) or null, accumulated into (+=); work (3 C) scratch;
// dout, inp (N, C); mean, inv_std (C) as the forward used them; gamma (C) or null.
// x_hat = (inp - mean) * inv_std; dbeta += colsum(dout); dgamma += colsum(dout * x_hat);
// training: dinp = gamma inv_std / N * (N dout - colsum(dout) - x_hat colsum(dout * x_hat));
// eval (statistics constant in inp): dinp = dout * gamma * inv_std. dinp may be dout.
template <typename T>
void batchnorm_backward(T* dinp, T* dgamma, T* dbeta, T* work, const T* dout, const T* inp,
                        const T* mean, const T* inv_std, const T* gamma, int64_t N, int64_t C,
                        bool training);

}  // namespace nnfast

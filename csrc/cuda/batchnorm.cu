// One block per column for the statistics and everything that needs them: a column's sums
// and its normalized values stay in one block, so no workspace holds the statistics between
// launches, and out or dx may alias the input (each block rewrites only its column, after
// block_sum has finished reading it).
#include "cuda/batchnorm.h"

#include <cmath>

#include "cuda/block_sum.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

int column_blocks(int64_t C) { return static_cast<int>(C < kMaxBlocks ? C : kMaxBlocks); }

// x (N, C), out (N, C); mean, inv_std, running_mean, running_var (C); gamma, beta (C) or
// null. keep = 1 - momentum, unbias = momentum N / (N - 1), each rounded once on the host.
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    batchnorm_forward_train_kernel(T* out, T* mean, T* inv_std, T* running_mean,
                                   T* running_var, const T* x, const T* gamma, const T* beta,
                                   int64_t N, int64_t C, T keep, T momentum, T unbias, T eps) {
  const T n = static_cast<T>(N);
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const T mu = static_cast<T>(block_sum<double>(N, [=](int64_t r) {
                   return static_cast<double>(x[r * C + c]);
                 })) / n;
    const T var = static_cast<T>(block_sum<double>(N, [=](int64_t r) {
                    const T d = x[r * C + c] - mu;
                    return static_cast<double>(d * d);
                  })) / n;
    const T scale = T(1) / std::sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[c] = mu;
      inv_std[c] = scale;
      running_mean[c] = keep * running_mean[c] + momentum * mu;
      running_var[c] = keep * running_var[c] + unbias * var;
    }
    const T g = gamma ? gamma[c] : T(1), b = beta ? beta[c] : T(0);
    for (int64_t r = threadIdx.x; r < N; r += blockDim.x)
      out[r * C + c] = (x[r * C + c] - mu) * scale * g + b;
  }
}

// x (N, C), out (N, C); running_mean, running_var (C); gamma, beta (C) or null
template <typename T>
__global__ void batchnorm_forward_eval_kernel(T* out, const T* x, const T* running_mean,
                                              const T* running_var, const T* gamma,
                                              const T* beta, int64_t N, int64_t C, T eps) {
  NNFAST_GRID_STRIDE_LOOP(i, N * C) {
    const int64_t c = i % C;
    const T scale = T(1) / std::sqrt(running_var[c] + eps);
    const T g = gamma ? gamma[c] : T(1), b = beta ? beta[c] : T(0);
    out[i] = (x[i] - running_mean[c]) * scale * g + b;
  }
}

// dx, dout, x (N, C); mean, inv_std (C); dgamma, dbeta, gamma (C) or null
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    batchnorm_backward_kernel(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x,
                              const T* mean, const T* inv_std, const T* gamma, int64_t N,
                              int64_t C, bool training) {
  const T n = static_cast<T>(N);
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const T mu = mean[c], is = inv_std[c];
    const T sum_g = static_cast<T>(block_sum<double>(N, [=](int64_t r) {
      return static_cast<double>(dout[r * C + c]);
    }));
    const T sum_gx = static_cast<T>(block_sum<double>(N, [=](int64_t r) {
      const T x_hat = (x[r * C + c] - mu) * is;
      return static_cast<double>(dout[r * C + c] * x_hat);
    }));
    if (threadIdx.x == 0) {
      if (dbeta) dbeta[c] += sum_g;
      if (dgamma) dgamma[c] += sum_gx;
    }
    const T scale = gamma ? gamma[c] * is : is;
    for (int64_t r = threadIdx.x; r < N; r += blockDim.x) {
      const int64_t i = r * C + c;
      if (training) {
        const T x_hat = (x[i] - mu) * is;
        dx[i] = (scale / n) * (n * dout[i] - sum_g - x_hat * sum_gx);
      } else {
        dx[i] = dout[i] * scale;
      }
    }
  }
}

}  // namespace

template <typename T>
void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean, T* running_var,
                             const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                             double momentum, double eps) {
  if (C <= 0) return;
  const double unbias = momentum * static_cast<double>(N) / static_cast<double>(N - 1);
  batchnorm_forward_train_kernel<T><<<column_blocks(C), kThreadsPerBlock>>>(
      out, mean, inv_std, running_mean, running_var, x, gamma, beta, N, C,
      static_cast<T>(1.0 - momentum), static_cast<T>(momentum), static_cast<T>(unbias),
      static_cast<T>(eps));
  check_launch("batchnorm_forward_train");
}

template <typename T>
void batchnorm_forward_eval(T* out, const T* x, const T* running_mean, const T* running_var,
                            const T* gamma, const T* beta, int64_t N, int64_t C, double eps) {
  if (N <= 0 || C <= 0) return;
  batchnorm_forward_eval_kernel<T><<<blocks_for(N * C), kThreadsPerBlock>>>(
      out, x, running_mean, running_var, gamma, beta, N, C, static_cast<T>(eps));
  check_launch("batchnorm_forward_eval");
}

template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                        const T* inv_std, const T* gamma, int64_t N, int64_t C, bool training) {
  if (C <= 0) return;
  batchnorm_backward_kernel<T><<<column_blocks(C), kThreadsPerBlock>>>(
      dx, dgamma, dbeta, dout, x, mean, inv_std, gamma, N, C, training);
  check_launch("batchnorm_backward");
}

NNFAST_INSTANTIATE_BATCHNORM(float)
NNFAST_INSTANTIATE_BATCHNORM(double)

}  // namespace nnfast::gpu

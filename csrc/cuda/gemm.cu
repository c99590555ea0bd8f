// A shared-memory tiled GEMM: each block computes a 64 x 64 tile of C, staging 64 x 16
// slices of op(A) and 16 x 64 slices of op(B) in shared memory; each of its 256 threads
// accumulates a 4 x 4 sub-tile in registers and applies the epilogue once, after the full
// K loop. Rows of the sub-tile are 16 apart, so a warp's stores to C are contiguous.
#include "cuda/gemm.h"

#include "cuda/activation_device.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreadsX = 16, kThreadsY = 16;  // along N, along M
constexpr int kThreads = kThreadsX * kThreadsY;
constexpr int kRowsPerThread = kTileM / kThreadsY, kColsPerThread = kTileN / kThreadsX;

template <typename T>
struct GemmArgs {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha, beta;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T* C;
  int64_t ldc;
  const T* bias;
  Activation activation;
  T negative_slope;
};

// op(A)[i][k], zero outside the matrix so partial tiles need no special case.
template <typename T>
__device__ T load_op_a(const GemmArgs<T>& g, int64_t i, int64_t k) {
  if (i >= g.M || k >= g.K) return T(0);
  return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k];
}

// op(B)[k][j]
template <typename T>
__device__ T load_op_b(const GemmArgs<T>& g, int64_t k, int64_t j) {
  if (k >= g.K || j >= g.N) return T(0);
  return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j];
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gemm_tiled(GemmArgs<T> g) {
  __shared__ T a_tile[kTileK][kTileM + 1];  // a_tile[k][i] = op(A)[m0 + i][k0 + k]
  __shared__ T b_tile[kTileK][kTileN + 1];  // b_tile[k][j] = op(B)[k0 + k][n0 + j]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kThreadsX + tx;
  const int64_t tiles_n = (g.N + kTileN - 1) / kTileN;
  const int64_t tiles = (g.M + kTileM - 1) / kTileM * tiles_n;

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t m0 = tile / tiles_n * kTileM, n0 = tile % tiles_n * kTileN;
    T acc[kRowsPerThread][kColsPerThread];
    for (int r = 0; r < kRowsPerThread; ++r)
      for (int c = 0; c < kColsPerThread; ++c) acc[r][c] = T(0);

    for (int64_t k0 = 0; k0 < g.K; k0 += kTileK) {
      // Consecutive threads read consecutive addresses of the matrix as it is stored.
      for (int e = tid; e < kTileM * kTileK; e += kThreads) {
        const int i = g.trans_a ? e % kTileM : e / kTileK;
        const int k = g.trans_a ? e / kTileM : e % kTileK;
        a_tile[k][i] = load_op_a(g, m0 + i, k0 + k);
      }
      for (int e = tid; e < kTileK * kTileN; e += kThreads) {
        const int j = g.trans_b ? e / kTileK : e % kTileN;
        const int k = g.trans_b ? e % kTileK : e / kTileN;
        b_tile[k][j] = load_op_b(g, k0 + k, n0 + j);
      }
      __syncthreads();
      for (int k = 0; k < kTileK; ++k) {
        T a[kRowsPerThread], b[kColsPerThread];
        for (int r = 0; r < kRowsPerThread; ++r) a[r] = a_tile[k][ty + r * kThreadsY];
        for (int c = 0; c < kColsPerThread; ++c) b[c] = b_tile[k][tx + c * kThreadsX];
        for (int r = 0; r < kRowsPerThread; ++r)
          for (int c = 0; c < kColsPerThread; ++c) acc[r][c] += a[r] * b[c];
      }
      __syncthreads();  // before the next slice overwrites the tiles
    }

    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t i = m0 + ty + r * kThreadsY;
      if (i >= g.M) continue;
      for (int c = 0; c < kColsPerThread; ++c) {
        const int64_t j = n0 + tx + c * kThreadsX;
        if (j >= g.N) continue;
        T* out = g.C + i * g.ldc + j;
        T v = g.alpha * acc[r][c];
        if (g.beta != T(0)) v += g.beta * *out;
        if (g.bias) v += g.bias[j];
        *out = activate_device(g.activation, v, g.negative_slope);
      }
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const GemmEpilogue<T>& epilogue) {
  if (M <= 0 || N <= 0) return;
  const GemmArgs<T> args{trans_a, trans_b, M,   N,   K,   alpha,        beta,
                         A,       lda,     B,   ldb, C,   ldc,          epilogue.bias,
                         epilogue.activation, epilogue.negative_slope};
  const int64_t tiles = (M + kTileM - 1) / kTileM * ((N + kTileN - 1) / kTileN);
  const int blocks = static_cast<int>(tiles < kMaxBlocks ? tiles : kMaxBlocks);
  gemm_tiled<T><<<blocks, dim3(kThreadsX, kThreadsY)>>>(args);
  check_launch("gemm_tiled");
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t,
                          const GemmEpilogue<float>&);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t,
                           const GemmEpilogue<double>&);

}  // namespace nnfast::gpu

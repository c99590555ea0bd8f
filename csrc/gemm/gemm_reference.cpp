// A correct, cache-friendly GEMM used until the packed microkernel driver lands: each thread
// owns a block of output rows and streams B row by row (i-k-j order) so the inner loop is a
// contiguous axpy the compiler vectorizes for the baseline ISA.
#include <algorithm>
#include <vector>

#include "common/threading.h"
#include "gemm/gemm.h"

namespace nnfast {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const GemmEpilogue<T>& ep) {
  const int threads = threads_for(M * N * K, 1 << 15);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    std::vector<T> acc(N, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
      if (trans_b) {
        for (int64_t j = 0; j < N; ++j) acc[j] += a * B[j * ldb + k];
      } else {
        const T* b = B + k * ldb;
        for (int64_t j = 0; j < N; ++j) acc[j] += a * b[j];
      }
    }
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      T v = alpha * acc[j];
      if (beta != T(0)) v += beta * c[j];
      if (ep.bias) v += ep.bias[j];
      c[j] = activate(ep.activation, v, ep.negative_slope);
    }
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t,
                          const GemmEpilogue<float>&);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t,
                           const GemmEpilogue<double>&);

const char* gemm_isa() { return "reference"; }

}  // namespace nnfast

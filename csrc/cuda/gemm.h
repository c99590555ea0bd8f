// C = act(alpha * op(A) @ op(B) + beta * C + bias) on device pointers, row-major: the same
// contract as gemm/gemm.h (op(A) (M, K), op(B) (K, N), C (M, N), bias (N) or null).
// beta == 0 never reads C. Plain FP32/FP64 arithmetic, no tensor cores.
#pragma once

#include <cstdint>

#include "gemm/gemm.h"

namespace nnfast::gpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const GemmEpilogue<T>& epilogue);

}  // namespace nnfast::gpu

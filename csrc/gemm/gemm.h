// C = act(alpha * op(A) @ op(B) + beta * C + bias), row-major.
// op(A) (M, K), op(B) (K, N), C (M, N), bias (N) or null.
// A is stored (M, K) with leading dimension lda, or (K, M) when trans_a; B likewise.
// The epilogue (bias, activation) is applied once, after the full K reduction.
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast {

template <typename T>
struct GemmEpilogue {
  const T* bias = nullptr;                 // (N), added to every row
  Activation activation = Activation::identity;
  T negative_slope = T(0.01);             // the activation's parameter, as activate() takes it
};

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const GemmEpilogue<T>& epilogue);

// The microkernel chosen for this CPU ("generic", "avx2", "avx512").
const char* gemm_isa();

}  // namespace nnfast

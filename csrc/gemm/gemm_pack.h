// Packing: copies a block of A or B into the panel layout the microkernels stream through
// contiguously. A panel of R rows of op(A) is stored k-major: dst[p * R + r]; a panel of R
// columns of op(B) likewise: dst[p * R + j]. Transposes are absorbed here. Rows (columns)
// past the matrix edge in the last panel are left unwritten: kernels never read them.
#pragma once

#include <cstdint>

namespace nnfast {

// Panels of `panel` rows of op(A)[i0 : i0 + m, p0 : p0 + k], one after another (each
// panel * k elements). A is (M, K) with leading dimension lda, or (K, M) when trans.
template <typename T>
void pack_a_panels(T* dst, const T* A, int64_t lda, bool trans, int64_t i0, int64_t m,
                   int64_t p0, int64_t k, int panel);

// Panels of `panel` columns of op(B)[p0 : p0 + k, j0 : j0 + n]. B is (K, N) with leading
// dimension ldb, or (N, K) when trans.
template <typename T>
void pack_b_panels(T* dst, const T* B, int64_t ldb, bool trans, int64_t p0, int64_t k,
                   int64_t j0, int64_t n, int panel);

}  // namespace nnfast

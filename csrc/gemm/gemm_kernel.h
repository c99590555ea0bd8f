// The contract between the GEMM driver (blocking, packing, threads: no ISA-specific code) and
// the microkernels (one translation unit per ISA, compiled with that ISA's flags).
//
// A microkernel computes one tile of at most MR x NR elements of C:
//   C[i, j] = epilogue(alpha * sum_p a(i, p) b(p, j) + beta * C[i, j]),  i < m, j < n
// where a(i, p) = a[i * a_rs + p * a_cs] (packed panels: a_rs = 1, a_cs = MR; an unpacked
// row-major A: a_rs = lda, a_cs = 1; unpacked transposed A: a_rs = 1, a_cs = lda) and
// b(p, j) = b[p * b_rs + j] (columns always contiguous: packed panels, b_rs = NR, or an
// unpacked row-major B, b_rs = ldb). Every element is reduced over p in order, one FMA per
// step, whatever the tile's size or position, so the result of an element does not depend on
// how C is split among threads. Kernels never read b beyond column n: unpacked B is loaded
// with masks on the last vector.
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast {

template <typename T>
struct MicroTile {
  const T* a;
  int64_t a_rs, a_cs;
  const T* b;
  int64_t b_rs;
  T* c;
  int64_t ldc;
  int64_t k;
  int m, n;
  T alpha, beta;  // beta == 0: C is not read (NaN or garbage in C is overwritten)
  // Set only on the last K block: bias (n values, null for none) and activation.
  const T* bias;
  Activation act;
  T slope;
};

template <typename T>
using MicroKernelFn = void (*)(const MicroTile<T>& tile);

// Packs panels of `panel` rows (columns) of op(A) (op(B)) for the kernels, k-major:
// dst[(r / panel) * panel * k + p * panel + r % panel] = element (r, p), r < extent, p < k,
// where element (r, p) is src[r * ld + p] when `interleave` (the operand's rows are the
// panel's rows: a transpose) and src[p * ld + r] otherwise. Rows past `extent` in the last
// panel are left unwritten: kernels never read them.
template <typename T>
using PackFn = void (*)(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                        int64_t k, int panel);

// out (n) = b (n, k) @ a (k): each row of b (k contiguous values, rows ldb apart) dotted
// with a (contiguous). For a single row of C against a transposed B (batch-1 dX = dY W^T),
// where a tile would have to pack B to read it along its columns. Each sum runs in vector
// lanes (p modulo the lane count), then across the lanes in a fixed order: another order
// than the tiles' one-FMA-per-step, but the same for every j however rows are split.
template <typename T>
using DotRowsFn = void (*)(T* out, const T* a, const T* b, int64_t ldb, int64_t k, int64_t n);

// out (n) = a (k; elements a_step apart) @ b (k, n; rows ldb apart): each out[j] summed over p
// in order from zero (one FMA per step in the vector kernels). For a single row of C against
// an untransposed B (batch-1 inference) wider than a few vectors: out stays in L1 while b
// streams through it four rows at a time, each row read front to back, which the hardware
// prefetchers follow. Against the single-row register tiles, which read B as column strips
// of up to 8 vectors, on the Zen 4 (AVX2, paired runs): 1.22x on 1 x 784 x 128, 1.14x on
// 1 x 128 x 64, 1.73x on 1 x 512 x 512; ahead from about six vectors (1 x 128 x 48) on,
// behind below that.
template <typename T>
using AxpyRowsFn = void (*)(T* out, const T* a, int64_t a_step, const T* b, int64_t ldb,
                            int64_t k, int64_t n);

// A microkernel, its register tile (at most mr rows by nr columns) and the packing routine
// compiled alongside it, with the single-row kernels for batch-1 products.
template <typename T>
struct MicroKernel {
  MicroKernelFn<T> run;
  int mr, nr;
  PackFn<T> pack;
  // Tiles of one row and up to nr_row columns, the same contract as `run` with m == 1. A lone
  // row gives the register tile one accumulator per B vector, too few to cover the FMA
  // latency; this one holds nr_row / lanes of them.
  MicroKernelFn<T> run_row;
  int nr_row;
  DotRowsFn<T> dot_rows;
  AxpyRowsFn<T> axpy_rows;
};

// The portable packing (any panel width), for the generic kernels and as the fallback.
template <typename T>
void pack_panels_portable(T* dst, const T* src, int64_t ld, bool interleave, int64_t extent,
                          int64_t k, int panel);

// Activations the kernels do not vectorize are applied here, to the tile just stored (still
// in L1), with the same scalar functions as the elementwise kernels. It is compiled for the
// baseline ISA: ISA translation units call it rather than instantiate shared inline code.
template <typename T>
void activate_tile(T* c, int64_t ldc, int64_t m, int64_t n, Activation act, T slope);

// The portable dot_rows and axpy_rows, also compiled for the baseline ISA.
template <typename T>
void dot_rows_portable(T* out, const T* a, const T* b, int64_t ldb, int64_t k, int64_t n);
template <typename T>
void axpy_rows_portable(T* out, const T* a, int64_t a_step, const T* b, int64_t ldb, int64_t k,
                        int64_t n);

// The kernels, each in its own translation unit. The ISA kernels' descriptors are constant
// data returned by reference: the dispatch (baseline code) copies them on any CPU, so
// fetching one must run none of its ISA's instructions. fma_flops_* run `iterations` rounds of an
// FMA-throughput loop on that ISA's widest float32 vectors and return the flops done.
MicroKernel<float> gemm_generic_f32_4x8();
MicroKernel<double> gemm_generic_f64_4x4();
double fma_flops_generic(int64_t iterations);
#if defined(__x86_64__) || defined(_M_X64)
const MicroKernel<float>& gemm_avx2_f32_6x16();
const MicroKernel<double>& gemm_avx2_f64_6x8();
double fma_flops_avx2(int64_t iterations);
const MicroKernel<float>& gemm_avx512_f32_14x32();
const MicroKernel<double>& gemm_avx512_f64_14x16();
double fma_flops_avx512(int64_t iterations);
#endif

}  // namespace nnfast

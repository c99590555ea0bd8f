// The portable microkernels, compiled for the baseline ISA (SSE2 on x86-64, NEON on
// aarch64, which the compiler vectorizes from these loops): what runs where no ISA-specific
// kernel can. Float32 tiles are 4 x 8, float64 4 x 4.
#include "common/activation.h"
#include "gemm/gemm_kernel.h"

namespace nnfast {

namespace {

template <typename T, int MR, int NR>
struct GenericKernel {
  template <int M>
  static void tile(const MicroTile<T>& t) {
    T acc[M][NR] = {};
    const int n = t.n;
    const T* a = t.a;
    const T* b = t.b;
    for (int64_t p = 0; p < t.k; ++p) {
      T bp[NR];
      for (int j = 0; j < NR; ++j) bp[j] = j < n ? b[j] : T(0);  // never read beyond column n
      for (int i = 0; i < M; ++i) {
        const T ai = a[i * t.a_rs];
        for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
      }
      a += t.a_cs;
      b += t.b_rs;
    }
    for (int i = 0; i < M; ++i) {
      T* c = t.c + i * t.ldc;
      for (int j = 0; j < n; ++j) {
        T x = t.alpha * acc[i][j];
        if (t.beta != T(0)) x += t.beta * c[j];
        if (t.bias) x += t.bias[j];
        c[j] = activate(t.act, x, t.slope);
      }
    }
  }

  static void run(const MicroTile<T>& t) {
    static_assert(MR == 4, "rows dispatched below");
    switch (t.m) {
      case 1: return tile<1>(t);
      case 2: return tile<2>(t);
      case 3: return tile<3>(t);
      default: return tile<4>(t);
    }
  }
};

}  // namespace

// Four rows at a time, for four independent sums in flight; each sums in order of p.
template <typename T>
void dot_rows_portable(T* out, const T* a, const T* b, int64_t ldb, int64_t k, int64_t n) {
  constexpr int R = 4;
  int64_t j = 0;
  for (; j + R <= n; j += R) {
    T acc[R] = {};
    for (int64_t p = 0; p < k; ++p)
      for (int r = 0; r < R; ++r) acc[r] += a[p] * b[(j + r) * ldb + p];
    for (int r = 0; r < R; ++r) out[j + r] = acc[r];
  }
  for (; j < n; ++j) {
    T acc = 0;
    for (int64_t p = 0; p < k; ++p) acc += a[p] * b[j * ldb + p];
    out[j] = acc;
  }
}

template void dot_rows_portable<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void dot_rows_portable<double>(double*, const double*, const double*, int64_t, int64_t,
                                        int64_t);

// Row after row of b into out, each out[j] summed in order of p.
template <typename T>
void axpy_rows_portable(T* out, const T* a, int64_t a_step, const T* b, int64_t ldb, int64_t k,
                        int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = T(0);
  for (int64_t p = 0; p < k; ++p) {
    const T ap = a[p * a_step];
    const T* row = b + p * ldb;
    for (int64_t j = 0; j < n; ++j) out[j] += ap * row[j];
  }
}

template void axpy_rows_portable<float>(float*, const float*, int64_t, const float*, int64_t,
                                        int64_t, int64_t);
template void axpy_rows_portable<double>(double*, const double*, int64_t, const double*, int64_t,
                                         int64_t, int64_t);

namespace {

template <typename T, int kLanes>
double fma_flops_generic_for(int64_t iterations) {
  T acc[kLanes];
  for (int i = 0; i < kLanes; ++i) acc[i] = T(i) * T(1e-3);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kLanes; ++i) acc[i] = acc[i] * T(0.999999) + T(1e-6);
  T sum = 0;
  for (int i = 0; i < kLanes; ++i) sum += acc[i];
  volatile T sink = sum;
  (void)sink;
  return 2.0 * kLanes * static_cast<double>(iterations);
}

}  // namespace

// Single rows take the same tile: portable code has no register budget to widen it into.
MicroKernel<float> gemm_generic_f32_4x8() {
  return {&GenericKernel<float, 4, 8>::run, 4, 8, &pack_panels_portable<float>,
          &GenericKernel<float, 4, 8>::run, 8, &dot_rows_portable<float>,
          &axpy_rows_portable<float>};
}
MicroKernel<double> gemm_generic_f64_4x4() {
  return {&GenericKernel<double, 4, 4>::run, 4, 4, &pack_panels_portable<double>,
          &GenericKernel<double, 4, 4>::run, 4, &dot_rows_portable<double>,
          &axpy_rows_portable<double>};
}

double fma_flops_generic(int64_t iterations) { return fma_flops_generic_for<float, 32>(iterations); }

}  // namespace nnfast

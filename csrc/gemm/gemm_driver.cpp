// The GEMM driver: cache blocking, packing and threads around the active ISA's microkernel
// (gemm_kernel.h). No ISA-specific code lives here.
//
// Loops, for one thread's rectangle of C (BLIS's five loops, roles named for row-major C):
//   ic: rows of A in blocks of mc            (the packed A block streams from L3)
//    pc: the reduction in blocks of kc       (beta applies on the first, epilogue on the last)
//     jc: columns of B in blocks of nc       (the packed B block, kc x nc, stays in L2)
//      ir: MR-row micro-panels of A          (one micro-panel, MR x kc, is reused from L1 ...)
//       jr: NR-column micro-panels of B      (... against every micro-panel of the B block)
// Operands that are already laid out well enough are not packed: B when it is not
// transposed and small enough to stay in L2, or read only a few times; A when few B
// micro-panels reuse each A micro-panel (small N), since packing A costs as much as
// reading it. The kernels take strided operands directly, so small matrices (batch-1
// inference, 64 x 10 layers) run without touching a packing buffer.
//
// Threads: C is split into a grid of rectangles, one per thread, whole tiles each, and
// every thread runs the loops above on its own with its own packing buffers. K is never
// split, and the blocking (kc) depends only on the problem, so every element of C is
// computed by the same operations in the same order on any number of threads.
#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <new>

#include "common/parallel.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "gemm/gemm_dispatch.h"
#include "gemm/gemm_kernel.h"

#if defined(__linux__)
#include <unistd.h>
#endif

namespace nnfast {

namespace {

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct CacheSizes {
  int64_t l1d = 32 << 10;
  int64_t l2 = 512 << 10;
};

// Per-core data caches, for the blocking. The defaults suit every x86-64 of the last decade
// closely enough when the OS does not say.
const CacheSizes& cache_sizes() {
  static const CacheSizes sizes = [] {
    CacheSizes s;
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
    const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l1 >= (16 << 10) && l1 <= (1 << 20)) s.l1d = l1;
    if (l2 >= (128 << 10) && l2 <= (64 << 20)) s.l2 = l2;
#endif
    return s;
  }();
  return sizes;
}

// Grow-only, 64-byte-aligned scratch owned by the calling thread: sized before the parallel
// region (no allocation inside it), reused by every later call of the same or smaller size.
class Workspace {
 public:
  ~Workspace() { std::free(raw_); }
  void* get(size_t bytes) {
    if (bytes > size_) {
      std::free(raw_);
      raw_ = nullptr;
      size_ = 0;
      raw_ = std::malloc(bytes + kAlign);
      if (!raw_) throw std::bad_alloc();
      size_ = bytes;
    }
    const auto address = reinterpret_cast<std::uintptr_t>(raw_);
    return reinterpret_cast<void*>((address + kAlign - 1) & ~std::uintptr_t(kAlign - 1));
  }

 private:
  static constexpr size_t kAlign = 64;
  void* raw_ = nullptr;
  size_t size_ = 0;
};

// Two per calling thread: packing buffers, and the C^T scratch of run_transposed (or the
// dot products of run_one_row).
Workspace& caller_workspace(int which) {
  thread_local Workspace ws[2];
  return ws[which];
}

template <typename T>
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
  GemmEpilogue<T> ep;
};

// A range split into `parts` contiguous pieces whose sizes differ by at most one: piece i
// starts at begin(i). Used for threads' rows and for the rows of the register tiles, so
// that no tile is left with a sliver of rows (a 2-row tile runs at FMA latency, not
// throughput).
struct EvenSplit {
  int64_t size, parts;
  int64_t begin(int64_t i) const { return i * (size / parts) + std::min(i, size % parts); }
};

struct Plan {
  int mr, nr;
  int64_t kc;         // reduction block: depends only on K and the kernel
  int64_t mc, nc;     // A rows / B columns per block (nc a multiple of nr)
  bool pack_a, pack_b;
  int grid_m, grid_n;  // threads along M (even row split) and N (split in whole nr tiles)
};

// The reduction block: an A micro-panel (mr x kc) in about half of L1 (it is reused
// there against every B micro-panel), and K split into equal blocks so the last one is not
// a sliver. A transposed A read in place holds a cache line per reduction step, not mr
// elements (less when its stored rows are shorter than a line): 784 x 1024 x 128 TN on the
// Zen 4 (32 KiB L1, 6-row tiles) ran at 78% of peak with kc = 512, whose lines filled all
// of L1, and at 85% with 256. The choice must not depend on the thread count (results are
// bitwise the same on any), so it does not depend on whether A ends up packed.
template <typename T>
int64_t choose_kc(const Problem<T>& pr, int mr) {
  constexpr int64_t kLine = 64;
  const int64_t tile_bytes = static_cast<int64_t>(mr) * static_cast<int64_t>(sizeof(T));
  const int64_t row_bytes = std::min(pr.lda * static_cast<int64_t>(sizeof(T)), kLine);
  const int64_t step_bytes = pr.trans_a ? std::max(tile_bytes, row_bytes) : tile_bytes;
  const int64_t fit = (cache_sizes().l1d / 2) / step_bytes;
  const int64_t kc_max = std::max<int64_t>(64, std::min<int64_t>(fit, 512) / 16 * 16);
  const int64_t blocks = ceil_div(pr.K, kc_max);
  return round_up(ceil_div(pr.K, blocks), 4);
}

// FMAs below which one thread is faster than waking others (OpenMP fork/join costs a few
// microseconds; this is about that much work).
constexpr int64_t kMinFmaPerThread = int64_t(1) << 17;

// What a cache line of C written by two threads costs, in FMAs: it moves between the cores
// once per row (256 x 10 x 128 NT on 2 threads with C 16 bytes off a line: 13.6 us split
// by columns, 4.0 us by rows; about 35 ns per row).
constexpr double kSharedLineFmas = 4096;

// Whether splitting C's columns into `parts` pieces of whole nr tiles leaves a cache line
// on both sides of a boundary in some row.
template <typename T>
bool column_split_shares_lines(const Problem<T>& pr, int64_t ntiles, int parts, int nr) {
  constexpr int64_t kLine = 64;
  const auto c = static_cast<int64_t>(reinterpret_cast<std::uintptr_t>(pr.C));
  const int64_t elem = static_cast<int64_t>(sizeof(T));
  if (pr.M > 1 && (pr.ldc * elem) % kLine != 0) return true;
  const EvenSplit split{ntiles, parts};
  for (int j = 1; j < parts; ++j)
    if ((c + split.begin(j) * nr * elem) % kLine != 0) return true;
  return false;
}

template <typename T>
Plan make_plan(const Problem<T>& pr, const MicroKernel<T>& kern) {
  Plan p;
  p.mr = kern.mr;
  p.nr = kern.nr;
  const int64_t elem = static_cast<int64_t>(sizeof(T));
  const int64_t M = pr.M, N = pr.N, K = pr.K;
  p.kc = choose_kc(pr, p.mr);
  const int64_t l2 = cache_sizes().l2;

  // Threads: the grid (gm x gn) with the least estimated time per thread: its FMAs (rows
  // padded to whole tiles, each tile costing about one row more, columns to whole
  // vectors) plus what it packs (an element copy costs about nr FMAs).
  const int64_t mtiles = ceil_div(M, p.mr), ntiles = ceil_div(N, p.nr);
  // A tile streams its B micro-panel whatever its height, so a matrix shorter than one tile
  // costs about what a full tile does: a few rows against a large B is memory-bound, and
  // splitting B's columns between threads splits that traffic across their caches.
  const int64_t work = std::max<int64_t>(M, p.mr) * N * K;
  const int threads = static_cast<int>(
      std::min<int64_t>(threads_for(work, kMinFmaPerThread), mtiles * ntiles));
  p.grid_m = 1;
  p.grid_n = 1;
  double best = -1;
  for (int gm = 1; gm <= threads; ++gm) {
    if (threads % gm) continue;
    const int gn = threads / gm;
    if (gm > M || gn > ntiles) continue;
    const int64_t rows = ceil_div(M, gm);
    const double row_cost = static_cast<double>(rows + ceil_div(rows, p.mr));
    const double cols = static_cast<double>(ceil_div(ntiles, gn) * p.nr);
    // Every thread pays for the transposed operands it reads: B's columns of its rectangle,
    // which it packs, and A's rows, packed or read in place a line per reduction step
    // (784 x 256 x 128 TN on 2 threads: 369 GFLOP/s split by rows, 289 by columns). An A
    // whose stored rows are shorter than a line (the C^T of run_transposed) is read as if
    // packed.
    const bool a_lines = pr.trans_a && pr.lda * elem > 64;
    const double pack = static_cast<double>(p.nr) *
                        ((pr.trans_b ? cols * K : 0.0) + (a_lines ? static_cast<double>(rows) * K : 0.0));
    const double shared =
        gn > 1 && column_split_shares_lines(pr, ntiles, gn, p.nr) ? kSharedLineFmas * rows : 0.0;
    const double cost = row_cost * cols * K + pack + shared;
    if (best < 0 || cost < best) {
      best = cost;
      p.grid_m = gm;
      p.grid_n = gn;
    }
  }
  const int64_t rows_per_thread = ceil_div(M, p.grid_m);
  const int64_t cols_per_thread = std::min(N, ceil_div(ntiles, p.grid_n) * p.nr);

  // B is read by every A micro-panel of a thread. Unpacked, a micro-panel is a column strip
  // of short rows one leading dimension apart, which the L1 prefetchers serve worse than a
  // contiguous panel (1024 x 784 x 128 runs 20% faster packed): it is packed when it is
  // transposed, or when more than two micro-panels read it and it either spills half of
  // L2 or is read by many (8 or more) of them.
  const int64_t b_bytes = K * cols_per_thread * elem;
  p.pack_b = pr.trans_b || (rows_per_thread > 2 * p.mr &&
                            (b_bytes > l2 / 2 || rows_per_thread >= 8 * p.mr));
  // An A micro-panel is read once per B micro-panel: pack it when that is many times. A
  // transposed A read in place costs a line (and a TLB entry) per reduction step, which
  // the kernels prefetch; packing it first is a pass of its own that does not overlap the
  // FMAs (784 x 1024 x 128 TN: 193 GFLOP/s in place, 161 packed), so it is packed on the
  // same rule.
  p.pack_a = cols_per_thread > 8 * p.nr;

  // Block sizes: the packed B block (kc x nc) in half of L2; the A block as tall as the
  // thread's rows, up to ~4 MiB packed (it streams; taller only saves re-packing B).
  p.nc = std::max<int64_t>(p.nr, (l2 / 2) / (p.kc * elem) / p.nr * p.nr);
  const int64_t mc_cap = std::max<int64_t>(p.mr, (int64_t(4) << 20) / (p.kc * elem) / p.mr * p.mr);
  p.mc = std::min(rows_per_thread, mc_cap);
  return p;
}

// One thread's rectangle of C: rows [m0, m1), columns [n0, n1).
template <typename T>
void gemm_rectangle(const Problem<T>& pr, const Plan& plan, const MicroKernel<T>& kern,
                    int64_t m0, int64_t m1, int64_t n0, int64_t n1, T* a_buf, T* b_buf) {
  const int mr = plan.mr, nr = plan.nr;
  MicroTile<T> t;
  t.alpha = pr.alpha;
  t.slope = pr.ep.negative_slope;
  t.ldc = pr.ldc;
  for (int64_t ic = m0; ic < m1; ic += plan.mc) {
    const int64_t mcur = std::min(plan.mc, m1 - ic);
    const EvenSplit tiles{mcur, ceil_div(mcur, mr)};
    for (int64_t pc = 0; pc < pr.K; pc += plan.kc) {
      const int64_t kcur = std::min(plan.kc, pr.K - pc);
      const bool last_k = pc + kcur == pr.K;
      t.k = kcur;
      t.beta = pc == 0 ? pr.beta : T(1);
      t.act = last_k ? pr.ep.activation : Activation::identity;

      // Tile i's A: rows ic + tiles.begin(i) on, either packed into slot i of a_buf
      // (a_rs = 1, a_cs = mr) or read in place.
      if (plan.pack_a) {
        for (int64_t i = 0; i < tiles.parts; ++i) {
          const int64_t r = ic + tiles.begin(i), h = tiles.begin(i + 1) - tiles.begin(i);
          const T* src = pr.trans_a ? pr.A + pc * pr.lda + r : pr.A + r * pr.lda + pc;
          kern.pack(a_buf + i * mr * kcur, src, pr.lda, !pr.trans_a, h, kcur, mr);
        }
        t.a_rs = 1;
        t.a_cs = mr;
      } else {
        t.a_rs = pr.trans_a ? 1 : pr.lda;
        t.a_cs = pr.trans_a ? pr.lda : 1;
      }

      for (int64_t jc = n0; jc < n1; jc += plan.nc) {
        const int64_t ncur = std::min(plan.nc, n1 - jc);
        const T* b_block;
        int64_t b_panel_step;
        if (plan.pack_b) {
          const T* src = pr.trans_b ? pr.B + jc * pr.ldb + pc : pr.B + pc * pr.ldb + jc;
          kern.pack(b_buf, src, pr.ldb, pr.trans_b, ncur, kcur, nr);
          b_block = b_buf;
          t.b_rs = nr;
          b_panel_step = nr * kcur;
        } else {
          b_block = pr.B + pc * pr.ldb + jc;
          t.b_rs = pr.ldb;
          b_panel_step = nr;
        }
        for (int64_t i = 0; i < tiles.parts; ++i) {
          const int64_t r = ic + tiles.begin(i);
          t.m = static_cast<int>(tiles.begin(i + 1) - tiles.begin(i));
          t.a = plan.pack_a ? a_buf + i * mr * kcur
                            : pr.trans_a ? pr.A + pc * pr.lda + r : pr.A + r * pr.lda + pc;
          for (int64_t jr = 0; jr < ncur; jr += nr) {
            t.b = b_block + (jr / nr) * b_panel_step;
            t.n = static_cast<int>(std::min<int64_t>(nr, ncur - jr));
            t.c = pr.C + r * pr.ldc + jc + jr;
            t.bias = last_k && pr.ep.bias ? pr.ep.bias + jc + jr : nullptr;
            kern.run(t);
          }
        }
      }
    }
  }
}

// K == 0 or alpha == 0: C = act(beta * C + bias), C not read when beta == 0.
template <typename T>
void scale_bias_activate(const Problem<T>& pr) {
  for (int64_t i = 0; i < pr.M; ++i) {
    T* c = pr.C + i * pr.ldc;
    for (int64_t j = 0; j < pr.N; ++j) {
      T x = pr.beta == T(0) ? T(0) : pr.beta * c[j];
      if (pr.ep.bias) x += pr.ep.bias[j];
      c[j] = x;
    }
    activate_tile(c, pr.ldc, 1, pr.N, pr.ep.activation, pr.ep.negative_slope);
  }
}

template <typename T>
const MicroKernel<T>& kernel_for(const IsaKernels& isa);
template <>
const MicroKernel<float>& kernel_for<float>(const IsaKernels& isa) { return isa.f32; }
template <>
const MicroKernel<double>& kernel_for<double>(const IsaKernels& isa) { return isa.f64; }

// Runs `pr` with the active kernels: plan, workspace, threads. Each thread then calls
// finish(m0, m1, n0, n1) on its rectangle of C, rows [m0, m1) by columns [n0, n1), which
// it has just completed.
template <typename T, typename Finish>
void run_blocked(const Problem<T>& pr, const MicroKernel<T>& kern, Finish&& finish) {
  const Plan plan = make_plan(pr, kern);
  const int threads = plan.grid_m * plan.grid_n;
  const int64_t a_elems = plan.pack_a ? round_up(plan.mc, plan.mr) * plan.kc : 0;
  const int64_t b_elems = plan.pack_b ? round_up(plan.nc, plan.nr) * plan.kc : 0;
  // Per-thread slices rounded to whole cache lines, so threads never share one.
  const int64_t slice = round_up(a_elems + b_elems, 64 / static_cast<int64_t>(sizeof(T)));
  T* buffers = slice ? static_cast<T*>(caller_workspace(0).get(sizeof(T) * slice * threads))
                     : nullptr;

  const EvenSplit thread_rows{pr.M, plan.grid_m};
  const EvenSplit thread_tiles{ceil_div(pr.N, plan.nr), plan.grid_n};
  auto run_thread = [&](int64_t tid) {
    const int gi = tid / plan.grid_n, gj = tid % plan.grid_n;
    const int64_t m0 = thread_rows.begin(gi), m1 = thread_rows.begin(gi + 1);
    const int64_t n0 = thread_tiles.begin(gj) * plan.nr;
    const int64_t n1 = std::min(pr.N, thread_tiles.begin(gj + 1) * plan.nr);
    if (m0 >= m1 || n0 >= n1) return;
    T* a_buf = buffers ? buffers + tid * slice : nullptr;
    T* b_buf = buffers ? a_buf + a_elems : nullptr;
    gemm_rectangle(pr, plan, kern, m0, m1, n0, n1, a_buf, b_buf);
    finish(m0, m1, n0, n1);
  };
  // One task per rectangle: done by whichever threads the runtime grants, each with the
  // caller's denormal flushing.
  parallel_tasks(threads, threads, run_thread);
}

template <typename T>
void run_blocked(const Problem<T>& pr, const MicroKernel<T>& kern) {
  run_blocked(pr, kern, [](int64_t, int64_t, int64_t, int64_t) {});
}

// Columns [j0, j1) of one row c of C from their products, computed apart (values[j * stride],
// times scale): c[j] = act(scale * value + beta * c[j] + bias[j]), C read only when beta != 0.
template <typename T>
void finish_row(const Problem<T>& pr, T* c, const T* values, int64_t stride, T scale,
                int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j) {
    T x = scale * values[j * stride];
    if (pr.beta != T(0)) x += pr.beta * c[j];
    if (pr.ep.bias) x += pr.ep.bias[j];
    c[j] = x;
  }
  if (pr.ep.activation != Activation::identity)
    activate_tile(c + j0, pr.ldc, 1, j1 - j0, pr.ep.activation,
                  pr.ep.negative_slope);
}

// A narrow C (N under half a vector) from a transposed A: computing C^T = op(B)^T op(A)^T
// instead puts the long M dimension in the kernel's vectors (N would leave most lanes
// idle, and the tile would be bound by A broadcasts), with both operands read in place:
// rows of the stored A are contiguous along M. C^T goes to a scratch (N x M), from which
// C = act(C^T' + beta C + bias) is written.
template <typename T>
bool narrow_output(const Problem<T>& pr, const MicroKernel<T>& kern) {
  return pr.trans_a && 2 * pr.N <= kern.nr && pr.M >= 2 * kern.nr;
}

template <typename T>
void run_transposed(const Problem<T>& pr, const MicroKernel<T>& kern) {
  T* ct = static_cast<T*>(caller_workspace(1).get(sizeof(T) * pr.M * pr.N));
  const Problem<T> swapped{!pr.trans_b, false, pr.N, pr.M, pr.K, pr.alpha, pr.B, pr.ldb,
                           pr.A, pr.lda, T(0), ct, pr.M, GemmEpilogue<T>{}};
  // Each thread writes the rows of C under its columns of C^T, while they are in its cache
  // (one thread finishing all of C read the other's half from its core: 128 x 256 x 10 TN
  // on 2 threads ran slower than on one).
  run_blocked(swapped, kern, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    for (int64_t i = n0; i < n1; ++i) finish_row(pr, pr.C + i * pr.ldc, ct + i, pr.M, T(1), m0, m1);
  });
}

// One row of C (batch-1 inference and its backward). A row of at most half the single-row
// tile's width (four vectors on x86) runs that tile, its sums in registers. A wider one goes
// to a scratch row, from which one pass applies alpha, beta, bias and the activation: an
// untransposed B streams through axpy_rows four rows at a time (from about six vectors on,
// that beats the tile: see AxpyRowsFn), and a transposed B is read along its rows by
// dot_rows (a tile would first pack it, copying all of B to use each element once). The
// threads split the columns: whole cache lines of the scratch row for axpy_rows, blocks of
// dot_rows' 8 rows. dot_rows wants the row of A contiguous, which a transposed A of one
// column is only when lda == 1: otherwise the tiles run it.
template <typename T>
void run_one_row(const Problem<T>& pr, const MicroKernel<T>& kern) {
  if (!pr.trans_b && 2 * pr.N <= kern.nr_row) {
    const MicroKernel<T> row{kern.run_row, 1, kern.nr_row, kern.pack, kern.run_row, kern.nr_row,
                             kern.dot_rows, kern.axpy_rows};
    return run_blocked(pr, row);
  }
  if (pr.trans_b && pr.trans_a && pr.lda != 1) return run_blocked(pr, kern);
  T* values = static_cast<T*>(caller_workspace(1).get(sizeof(T) * pr.N));
  const int64_t block = pr.trans_b ? 8 : 64 / static_cast<int64_t>(sizeof(T));
  // axpy_rows keeps its part of the row in L1 beside the four rows of B it reads.
  const int64_t axpy_columns = (8 << 10) / static_cast<int64_t>(sizeof(T));
  const int64_t a_step = pr.trans_a ? pr.lda : 1;
  const int64_t blocks = ceil_div(pr.N, block);
  const int threads = static_cast<int>(
      std::min<int64_t>(threads_for(pr.N * pr.K, kMinFmaPerThread), blocks));
  const EvenSplit split{blocks, threads};
  parallel_tasks(threads, threads, [&](int64_t t) {
    const int64_t j0 = split.begin(t) * block;
    const int64_t j1 = std::min(pr.N, split.begin(t + 1) * block);
    if (j0 >= j1) return;
    if (pr.trans_b)
      return kern.dot_rows(values + j0, pr.A, pr.B + j0 * pr.ldb, pr.ldb, pr.K, j1 - j0);
    for (int64_t j = j0; j < j1; j += axpy_columns)
      kern.axpy_rows(values + j, pr.A, a_step, pr.B + j, pr.ldb, pr.K,
                     std::min(axpy_columns, j1 - j));
  });
  finish_row(pr, pr.C, values, 1, pr.alpha, 0, pr.N);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const GemmEpilogue<T>& epilogue) {
  if (M <= 0 || N <= 0) return;
  const Problem<T> pr{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue};
  if (K <= 0 || alpha == T(0)) return scale_bias_activate(pr);
  const MicroKernel<T>& kern = kernel_for<T>(active_gemm_isa());
  if (pr.M == 1) return run_one_row(pr, kern);
  if (narrow_output(pr, kern)) return run_transposed(pr, kern);
  run_blocked(pr, kern);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t,
                          const GemmEpilogue<float>&);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t,
                           const GemmEpilogue<double>&);

}  // namespace nnfast

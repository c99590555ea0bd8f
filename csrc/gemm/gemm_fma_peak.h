// The FMA-throughput loop behind fma_peak_gflops(): kChains independent accumulator chains,
// enough to cover FMA latency times the FMA ports. Included by one translation unit per ISA,
// so it compiles to that ISA's vectors; the timing is done by the caller, in baseline code
// (no library templates get instantiated here with ISA flags).
#pragma once

#include <cstdint>

namespace nnfast {
namespace {

// W: vector traits. Returns the floating-point operations done (2 per FMA lane).
template <class W, int kChains>
double fma_flops_for(int64_t iterations) {
  using T = typename W::T;
  using V = typename W::V;
  V acc[kChains];
#pragma GCC unroll 32
  for (int i = 0; i < kChains; ++i) acc[i] = W::set1(T(i) * T(1e-3));
  const V scale = W::set1(T(0.999999)), shift = W::set1(T(1e-6));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < kChains; ++i) acc[i] = W::fma(acc[i], scale, shift);
  }
  // Fold the chains into one stored value, so none of them is dead code.
  V sum = acc[0];
#pragma GCC unroll 32
  for (int i = 1; i < kChains; ++i) sum = W::add(sum, acc[i]);
  T lanes[W::L];
  W::store(lanes, sum);
  volatile T sink = lanes[0];
  (void)sink;
  return 2.0 * W::L * kChains * static_cast<double>(iterations);
}

}  // namespace
}  // namespace nnfast

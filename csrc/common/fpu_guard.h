// Flush denormals to zero for the duration of a kernel, then restore the caller's mode.
// Denormal operands cost ~100 cycles each on x86; a network's tiny gradients produce them.
#pragma once

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace nnfast {

// The calling thread's SSE floating-point mode: MXCSR without its sticky exception flags
// (bits 0-5, set by ordinary arithmetic), or -1 without SSE. The tests check that no call
// leaves FTZ/DAZ, rounding or exception masks changed behind it.
inline long long fpu_mode() {
#if defined(__SSE__) || defined(_M_X64)
  return static_cast<long long>(_mm_getcsr() & ~0x3Fu);
#else
  return -1;
#endif
}

class FpuGuard {
 public:
#if defined(__SSE__) || defined(_M_X64)
  FpuGuard() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
  ~FpuGuard() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtz = 0x8000;  // MXCSR bit 15: flush-to-zero
  static constexpr unsigned kDaz = 0x0040;  // MXCSR bit 6: denormals-are-zero
  unsigned saved_;
#else
  FpuGuard() = default;
#endif
  FpuGuard(const FpuGuard&) = delete;
  FpuGuard& operator=(const FpuGuard&) = delete;
};

}  // namespace nnfast

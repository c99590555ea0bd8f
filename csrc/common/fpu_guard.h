// Flush denormals to zero for the duration of a kernel, then restore the caller's mode.
// Denormal operands cost ~100 cycles each on x86; a network's tiny gradients produce them.
#pragma once

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace nnfast {

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

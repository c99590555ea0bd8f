#include "gemm/gemm_dispatch.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include "gemm/gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#define NNFAST_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace nnfast {

namespace {

#ifdef NNFAST_X86
struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
#if defined(_MSC_VER)
  int out[4];
  __cpuidex(out, static_cast<int>(leaf), static_cast<int>(subleaf));
  r.eax = out[0], r.ebx = out[1], r.ecx = out[2], r.edx = out[3];
#else
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
#endif
  return r;
}

// XCR0: which register states the OS saves on a context switch. A CPU with AVX-512 under an
// OS (or hypervisor) that does not save ZMM state must not run AVX-512 code.
uint64_t xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
#endif
}

bool bit(uint32_t reg, int i) { return (reg >> i) & 1u; }

struct CpuSupport {
  bool avx2 = false, avx512 = false;
};

CpuSupport detect_cpu() {
  CpuSupport s;
  const uint32_t max_leaf = cpuid(0, 0).eax;
  if (max_leaf < 7) return s;
  const CpuidRegs l1 = cpuid(1, 0), l7 = cpuid(7, 0);
  const bool osxsave = bit(l1.ecx, 27), avx = bit(l1.ecx, 28), fma = bit(l1.ecx, 12);
  if (!(osxsave && avx)) return s;
  const uint64_t xcr = xcr0();
  const bool ymm_state = (xcr & 0x6) == 0x6;     // SSE and AVX state
  const bool zmm_state = (xcr & 0xE6) == 0xE6;   // plus opmask, ZMM_Hi256, Hi16_ZMM
  s.avx2 = ymm_state && fma && bit(l7.ebx, 5);
  s.avx512 = s.avx2 && zmm_state && bit(l7.ebx, 16) && bit(l7.ebx, 17) && bit(l7.ebx, 30) &&
             bit(l7.ebx, 31);  // F, DQ, BW, VL
  return s;
}
#endif

// Supported ISAs, slowest first.
std::vector<const IsaKernels*> supported() {
  static const IsaKernels generic{"generic", gemm_generic_f32_4x8(), gemm_generic_f64_4x4(),
                                  &fma_flops_generic};
  std::vector<const IsaKernels*> isas{&generic};
#ifdef NNFAST_X86
  static const IsaKernels avx2{"avx2", gemm_avx2_f32_6x16(), gemm_avx2_f64_6x8(),
                               &fma_flops_avx2};
  static const IsaKernels avx512{"avx512", gemm_avx512_f32_14x32(), gemm_avx512_f64_14x16(),
                                 &fma_flops_avx512};
  static const CpuSupport cpu = detect_cpu();
  if (cpu.avx2) isas.push_back(&avx2);
  if (cpu.avx512) isas.push_back(&avx512);
#endif
  return isas;
}

const IsaKernels* find_supported(const std::string& name) {
  for (const IsaKernels* isa : supported())
    if (name == isa->name) return isa;
  return nullptr;
}

struct Selection {
  std::atomic<const IsaKernels*> active{nullptr};
  std::string env_warning;
};

Selection& selection() {
  static Selection* s = [] {
    auto* sel = new Selection;  // never destroyed: gemm may run during interpreter exit
    const IsaKernels* best = supported().back();
    const IsaKernels* chosen = best;
    if (const char* env = std::getenv("NNFAST_ISA"); env && *env) {
      if (const IsaKernels* want = find_supported(env)) {
        chosen = want;
      } else {
        sel->env_warning = std::string("NNFAST_ISA=") + env +
                           " is unknown or not supported by this CPU (supported:";
        for (const IsaKernels* isa : supported()) sel->env_warning += std::string(" ") + isa->name;
        sel->env_warning += "); using " + std::string(best->name);
      }
    }
    sel->active.store(chosen);
    return sel;
  }();
  return *s;
}

}  // namespace

const IsaKernels& active_gemm_isa() { return *selection().active.load(std::memory_order_acquire); }

std::vector<std::string> supported_gemm_isas() {
  std::vector<std::string> names;
  for (const IsaKernels* isa : supported()) names.push_back(isa->name);
  return names;
}

bool select_gemm_isa(const std::string& name) {
  const IsaKernels* isa = find_supported(name);
  if (!isa) return false;
  selection().active.store(isa, std::memory_order_release);
  return true;
}

std::string gemm_isa_env_warning() { return selection().env_warning; }

const char* gemm_isa() { return active_gemm_isa().name; }

double fma_peak_gflops(double seconds) {
  using Clock = std::chrono::steady_clock;
  const IsaKernels& isa = active_gemm_isa();
  // Grow the burst until it lasts ~5 ms (timer resolution and warm-up negligible), then keep
  // the fastest of the bursts that fit in `seconds`.
  int64_t iterations = 1 << 12;
  double best = 0, spent = 0;
  while (spent < seconds || best == 0) {
    const auto start = Clock::now();
    const double flops = isa.fma_flops(iterations);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    spent += elapsed;
    if (elapsed < 5e-3) {
      iterations *= 2;
      continue;
    }
    if (flops / elapsed > best) best = flops / elapsed;
  }
  return best * 1e-9;
}

}  // namespace nnfast

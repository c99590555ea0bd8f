// exp, expm1, tanh, log and log1p for float32 written without branches or library calls, so loops over them
// vectorize (glibc's expf/tanhf are scalar calls, 5-20x slower per element than numpy's
// SIMD versions). Cephes' range reduction and minimax polynomials: within 2 ulp of the
// correctly rounded value over the whole range. float64 keeps the C library's functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace nnfast {

// Reinterpret the bits of a float as an int and back. A builtin where there is one: GCC
// vectorizes loops over it, not over chains of memcpy puns.
template <typename To, typename From>
inline To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
#if defined(__has_builtin)
#if __has_builtin(__builtin_bit_cast)
  return __builtin_bit_cast(To, from);
#define NNFAST_HAVE_BUILTIN_BIT_CAST 1
#endif
#endif
#ifndef NNFAST_HAVE_BUILTIN_BIT_CAST
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
#endif
}

// 2^n for an integer-valued float n in [-126, 127], built in the exponent bits.
inline float pow2_f32(float n) {
  return bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

constexpr float kExpMax = 88.72283935546875f;   // largest x with a finite exp
constexpr float kExpMin = -87.33654022216797f;  // exp(kExpMin) = FLT_MIN; below, 0 (as under FTZ)

// exp(x) = 2^n (1 + q) for x in [kExpMin, kExpMax]: n = round(x / ln 2), q = expm1(r) for
// r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2].
struct ExpParts {
  float n, q;
};

inline ExpParts exp_parts(float x) {
  // n by the 1.5 * 2^23 trick; r in two exact parts.
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return {n, p * (r * r) + r};
}

inline float exp_vec(float x) {
  const float xc = x > kExpMax ? kExpMax : (x < kExpMin ? kExpMin : x);  // NaN passes through
  const ExpParts e = exp_parts(xc);
  // n reaches 128 near kExpMax: scale by 2^min(n, 127), then by 2^(n - that) in {1, 2}.
  const float n1 = e.n > 127.0f ? 127.0f : e.n;
  const float scaled = (e.q + 1.0f) * pow2_f32(n1) * pow2_f32(e.n - n1);
  const float inf = std::numeric_limits<float>::infinity();
  return x > kExpMax ? inf : (x < kExpMin ? 0.0f : scaled);
}

// exp(x) - 1 without the cancellation near 0: 2^n q + (2^n - 1), where 2^n - 1 is exact
// and the sum rounds once; for |x| < ln 2 / 2, n = 0 and that is q itself.
inline float expm1_vec(float x) {
  const float xc = x > kExpMax ? kExpMax : (x < kExpMin ? kExpMin : x);  // NaN passes through
  const ExpParts e = exp_parts(xc);
  // As in exp_vec; the 1 that the second factor of 2 misses is below the rounding at 2^127.
  const float n1 = e.n > 127.0f ? 127.0f : e.n;
  const float s = pow2_f32(n1);
  const float scaled = (e.q * s + (s - 1.0f)) * pow2_f32(e.n - n1);
  const float inf = std::numeric_limits<float>::infinity();
  return x > kExpMax ? inf : (x < kExpMin ? -1.0f : scaled);
}

inline float tanh_vec(float x) {
  const float a = std::fabs(x);
  // |x| < 0.625: odd polynomial; else 1 - 2 / (exp(2|x|) + 1), exact enough away from 0.
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float large = 1.0f - 2.0f / (exp_vec(2.0f * a) + 1.0f);
  return a < 0.625f ? small : std::copysign(large, x);
}

// log(1 + m) + e log 2 for m in [sqrt(1/2) - 1, sqrt(2) - 1): Cephes' logf polynomial.
inline float log_reduced(float m, float e) {
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  const float y = p * m * z + e * -2.12194440e-4f - 0.5f * z;
  return (m + y) + e * 0.693359375f;
}

inline float log_vec(float x) {
  // x = m0 2^e0 with m0 in [0.5, 1), read from the bits; then m0 in [sqrt(1/2), sqrt(2)).
  const int32_t bits = bit_cast<int32_t>(x);
  const float e0 = static_cast<float>(((bits >> 23) & 0xff) - 126);
  const float m0 = bit_cast<float>((bits & 0x807fffff) | 0x3f000000);
  const bool low = m0 < 0.707106781186547524f;
  const float result = log_reduced((low ? m0 + m0 : m0) - 1.0f, low ? e0 - 1.0f : e0);
  // Zero and subnormals (zero under DAZ) give -inf, negatives and NaN give NaN, inf stays.
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float special = x == inf ? inf : (x >= 0.0f ? -inf : nan);
  return x >= std::numeric_limits<float>::min() && x < inf ? result : special;
}

// log(1 + x) for x in [0, 1] (as exp(-|z|) in binary cross-entropy with logits), without
// reading bits, so it vectorizes after exp_vec too; the rounding of u = 1 + x is corrected
// so tiny x keep their precision.
inline float log1p_unit(float x) {
  const float u = 1.0f + x;
  const float correction = ((u - 1.0f) - x) / u;
  const bool high = u > 1.41421356237309505f;
  const float m = high ? 0.5f * u - 1.0f : u - 1.0f;
  return log_reduced(m, high ? 1.0f : 0.0f) - correction;
}

inline double exp_vec(double x) { return std::exp(x); }
inline double expm1_vec(double x) { return std::expm1(x); }
inline double tanh_vec(double x) { return std::tanh(x); }
inline double log_vec(double x) { return std::log(x); }
inline double log1p_unit(double x) { return std::log1p(x); }

}  // namespace nnfast

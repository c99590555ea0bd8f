// exp and tanh for float32 written without branches or library calls, so loops over them
// vectorize (glibc's expf/tanhf are scalar calls, 5-20x slower per element than numpy's
// SIMD versions). Cephes' range reduction and minimax polynomials: within 2 ulp of the
// correctly rounded value over the whole range. float64 keeps the C library's functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace nnfast {

// 2^n for an integer-valued float n in [-126, 127], built in the exponent bits.
inline float pow2_f32(float n) {
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

inline float exp_vec(float x) {
  constexpr float kMax = 88.72283935546875f;   // largest x with a finite exp
  constexpr float kMin = -87.33654022216797f;  // exp(kMin) = FLT_MIN; below, 0 (as under FTZ)
  const float xc = x > kMax ? kMax : (x < kMin ? kMin : x);  // NaN passes through
  // n = round(x / ln 2) by the 1.5 * 2^23 trick; r = x - n ln 2 in two exact parts.
  constexpr float kRound = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  // n reaches 128 near kMax: scale by 2^min(n, 127), then by 2^(n - that) in {1, 2}.
  const float n1 = n > 127.0f ? 127.0f : n;
  const float scaled = y * pow2_f32(n1) * pow2_f32(n - n1);
  const float inf = std::numeric_limits<float>::infinity();
  return x > kMax ? inf : (x < kMin ? 0.0f : scaled);
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

inline double exp_vec(double x) { return std::exp(x); }
inline double tanh_vec(double x) { return std::tanh(x); }

}  // namespace nnfast

#pragma once
// Portable 16-lane float vectors (GCC vector extensions) for ml's own CPU
// kernels: loads and stores of fp32 and bf16, and a sigmoid. Internal to ml.
//
// The compiler does not vectorize the scalar form of these kernels by
// itself. A kernel marked DETOPS_SIMD_CLONES is compiled for AVX-512, AVX2
// and the baseline, picked at load time; every helper here is always
// inlined, so each clone compiles it for its own instruction set (a vector
// never crosses a call, so never an ABI).

#include <cmath>
#include <cstdint>
#include <cstring>

namespace detops::ml::simd {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DETOPS_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DETOPS_SIMD_CLONES
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

constexpr int kLanes = 16;
typedef float VecF __attribute__((vector_size(4 * kLanes)));
typedef int32_t VecI __attribute__((vector_size(4 * kLanes)));
typedef uint32_t VecU __attribute__((vector_size(4 * kLanes)));
typedef uint16_t VecH __attribute__((vector_size(2 * kLanes)));

// bf16 values travel as their bit patterns.
using Bf16Bits = uint16_t;

[[gnu::always_inline]] inline VecF Load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline void Store(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }

[[gnu::always_inline]] inline VecF Load(const Bf16Bits* p) {
  VecH h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<VecF>(__builtin_convertvector(h, VecU) << 16);
}

// Rounds to nearest even (there are no NaNs here).
[[gnu::always_inline]] inline void Store(Bf16Bits* p, VecF f) {
  VecU u = reinterpret_cast<VecU>(f);
  u += 0x7fffu + ((u >> 16) & 1u);
  VecH h = __builtin_convertvector(u >> 16, VecH);
  std::memcpy(p, &h, sizeof h);
}

// One value, for the tails of arrays.
[[gnu::always_inline]] inline float ToFloat(float v) { return v; }
[[gnu::always_inline]] inline float ToFloat(Bf16Bits h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
[[gnu::always_inline]] inline void Put(float* p, float v) { *p = v; }
[[gnu::always_inline]] inline void Put(Bf16Bits* p, float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u += 0x7fffu + ((u >> 16) & 1u);
  *p = static_cast<Bf16Bits>(u >> 16);
}

// The tail of an array (fewer than kLanes values) as a zero-padded vector.
template <typename T>
[[gnu::always_inline]] inline VecF LoadTail(const T* p, int64_t n) {
  T pad[kLanes] = {};
  std::memcpy(pad, p, static_cast<size_t>(n) * sizeof(T));
  return Load(pad);
}

template <typename T>
[[gnu::always_inline]] inline void StoreTail(T* p, int64_t n, VecF f) {
  T res[kLanes];
  Store(res, f);
  std::memcpy(p, res, static_cast<size_t>(n) * sizeof(T));
}

// 1 / (1 + e^-x), with Cephes' expf polynomial (relative error 2.5e-7, far
// below bf16's 4e-3). n = round(-x / ln 2) by the 1.5 * 2^23 trick, which
// leaves n in the low mantissa bits.
[[gnu::always_inline]] inline VecF Sigmoid(VecF x) {
  VecF t = -x;
  t = t < -87.f ? -87.f : t;
  t = t > 87.f ? 87.f : t;
  VecF shifted = t * 1.44269504f + 12582912.f;
  VecF fn = shifted - 12582912.f;
  VecI n = reinterpret_cast<VecI>(shifted) - 0x4B400000;
  VecF r = t - fn * 0.693359375f + fn * 2.12194440e-4f;
  VecF p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  VecF scale = reinterpret_cast<VecF>((n + 127) << 23);
  return 1.f / (1.f + p * scale);
}

[[gnu::always_inline]] inline float Sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// d silu(x) / dx times the incoming gradient.
template <typename V>
[[gnu::always_inline]] inline V SiluGrad(V x, V gy) {
  V s = Sigmoid(x);
  return gy * s * (1.f + x * (1.f - s));
}

#pragma GCC diagnostic pop

}  // namespace detops::ml::simd

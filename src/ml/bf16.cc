#include "ml/bf16.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>

#include "ml/ml.h"

namespace detops::ml {

bool CpuHasNativeBf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

namespace {

// GCC vector extensions: 16 lanes, lowered to AVX-512, AVX2 or SSE by the
// clones below (picked at load time). The compiler does not vectorize the
// scalar form of this code by itself.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DETOPS_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DETOPS_SIMD_CLONES
#endif

// Every helper is always inlined, so that each clone compiles it for its
// own instruction set (a vector passed between them never crosses an ABI).
#pragma GCC diagnostic ignored "-Wpsabi"

constexpr int kLanes = 16;
typedef float VecF __attribute__((vector_size(4 * kLanes)));
typedef int32_t VecI __attribute__((vector_size(4 * kLanes)));
typedef uint32_t VecU __attribute__((vector_size(4 * kLanes)));
typedef uint16_t VecH __attribute__((vector_size(2 * kLanes)));

[[gnu::always_inline]] inline VecF Load(const uint16_t* p) {
  VecH h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<VecF>(__builtin_convertvector(h, VecU) << 16);
}

// Rounds to nearest even (there are no NaNs here).
[[gnu::always_inline]] inline void Store(uint16_t* p, VecF f) {
  VecU u = reinterpret_cast<VecU>(f);
  u += 0x7fffu + ((u >> 16) & 1u);
  VecH h = __builtin_convertvector(u >> 16, VecH);
  std::memcpy(p, &h, sizeof h);
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

// The tail of an array (fewer than kLanes values) as a zero-padded vector.
[[gnu::always_inline]] inline VecF LoadTail(const uint16_t* p, int64_t n) {
  uint16_t pad[kLanes] = {};
  std::memcpy(pad, p, static_cast<size_t>(n) * 2);
  return Load(pad);
}

[[gnu::always_inline]] inline void StoreTail(uint16_t* p, int64_t n, VecF f) {
  uint16_t res[kLanes];
  Store(res, f);
  std::memcpy(p, res, static_cast<size_t>(n) * 2);
}

DETOPS_SIMD_CLONES
void SiluForward(const uint16_t* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    VecF v = Load(x + i);
    Store(y + i, v * Sigmoid(v));
  }
  if (i < n) {
    VecF v = LoadTail(x + i, n - i);
    StoreTail(y + i, n - i, v * Sigmoid(v));
  }
}

[[gnu::always_inline]] inline VecF SiluGrad(VecF x, VecF gy) {
  VecF s = Sigmoid(x);
  return gy * s * (1.f + x * (1.f - s));
}

DETOPS_SIMD_CLONES
void SiluBackward(const uint16_t* x, const uint16_t* gy, uint16_t* gx, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) Store(gx + i, SiluGrad(Load(x + i), Load(gy + i)));
  if (i < n) StoreTail(gx + i, n - i, SiluGrad(LoadTail(x + i, n - i), LoadTail(gy + i, n - i)));
}

const uint16_t* In(const torch::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>());
}
uint16_t* Out(torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

constexpr int64_t kGrain = 1 << 15;

class SiluBf16 : public torch::autograd::Function<SiluBf16> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    torch::Tensor y = torch::empty_like(x);
    const uint16_t* in = In(x);
    uint16_t* out = Out(y);
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t b, int64_t e) { SiluForward(in + b, out + b, e - b); });
    ctx->save_for_backward({x});
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    torch::Tensor x = ctx->get_saved_variables()[0];
    if (!grads[0].defined()) return {torch::Tensor()};
    // The gradient is walked in x's memory order, so it needs x's strides.
    torch::Tensor gy = grads[0].to(torch::kBFloat16);
    if (gy.strides() != x.strides()) gy = torch::empty_like(x).copy_(gy);
    torch::Tensor gx = torch::empty_like(x);
    const uint16_t *in = In(x), *g = In(gy);
    uint16_t* out = Out(gx);
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t b, int64_t e) { SiluBackward(in + b, g + b, out + b, e - b); });
    return {gx};
  }
};

}  // namespace

torch::Tensor Silu(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kBFloat16 || !x.is_cpu() || !x.is_non_overlapping_and_dense()) {
    return torch::silu(x);
  }
  return SiluBf16::apply(x);
}

}  // namespace detops::ml

namespace detops {

Result<std::string> ResolvePrecision(const std::string& precision, const std::string& device) {
  if (precision == "fp32") return precision;
  if (precision == "auto") {
    return std::string(device == "cpu" && ml::CpuHasNativeBf16() ? "bf16" : "fp32");
  }
  if (precision == "bf16") {
    if (device != "cpu") {
      return Status::InvalidInput("--precision bf16 is for training on the CPU; " + device +
                                  " trains in fp32");
    }
    if (!ml::CpuHasNativeBf16()) {
      return Status::InvalidInput(
          "--precision bf16 needs a CPU with AVX512-BF16, and this one has none; use fp32");
    }
    return precision;
  }
  return Status::InvalidInput("--precision must be auto, fp32 or bf16; got '" + precision + "'");
}

}  // namespace detops

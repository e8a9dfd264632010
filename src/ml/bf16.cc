#include "ml/bf16.h"

#include <ATen/Parallel.h>

#include <cstdint>

#include "ml/ml.h"
#include "ml/simd.h"

namespace detops::ml {

bool CpuHasNativeBf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

namespace {

using namespace simd;
#pragma GCC diagnostic ignored "-Wpsabi"

template <typename T>
[[gnu::always_inline]] inline void SiluBody(const T* x, T* y, int64_t n) {
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
// y may be x.
DETOPS_SIMD_CLONES void SiluForward(const uint16_t* x, uint16_t* y, int64_t n) {
  SiluBody(x, y, n);
}
DETOPS_SIMD_CLONES void SiluForward(const float* x, float* y, int64_t n) { SiluBody(x, y, n); }

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

void SiluInPlace(torch::Tensor& x) {
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  if (!(bf16 || x.scalar_type() == torch::kFloat) || !x.is_cpu() ||
      !x.is_non_overlapping_and_dense()) {
    torch::silu_(x);
    return;
  }
  if (bf16) {
    uint16_t* p = Out(x);
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t b, int64_t e) { SiluForward(p + b, p + b, e - b); });
  } else {
    float* p = x.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t b, int64_t e) { SiluForward(p + b, p + b, e - b); });
  }
}

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
      return Status::InvalidInput("--precision bf16 runs on the CPU only; " + device +
                                  " runs in fp32");
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

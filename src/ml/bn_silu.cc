#include "ml/bn_silu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ml/bf16.h"
#include "ml/simd.h"

namespace detops::ml {
namespace {

using namespace simd;
#pragma GCC diagnostic ignored "-Wpsabi"

// A channels-last tensor is a flat array in which element i belongs to
// channel i % C. Per-channel coefficients are laid out over one period of
// lcm(C, kLanes) elements, so that a vector at offset k of any period meets
// the same channels: every pass below is vectorized whatever C is, and only
// the last partial period of the whole tensor is walked one value at a
// time.
struct Layout {
  int64_t channels = 0, total = 0, rows = 0;
  int64_t period = 0;  // lcm(channels, kLanes)
  int64_t block = 0;   // elements per parallel task: whole periods
  int64_t blocks = 0;
};

Layout MakeLayout(const torch::Tensor& x) {
  Layout l;
  l.channels = x.size(1);
  l.total = x.numel();
  l.rows = l.total / l.channels;
  l.period = std::lcm(l.channels, int64_t{kLanes});
  l.block = l.period * std::max<int64_t>(1, (int64_t{1} << 14) / l.period);
  l.blocks = (l.total + l.block - 1) / l.block;
  return l;
}

// Per-channel values repeated over one period.
std::vector<float> Expand(const Layout& l, const std::vector<float>& per_channel) {
  std::vector<float> out(static_cast<size_t>(l.period));
  for (int64_t p = 0; p < l.period; ++p) out[p] = per_channel[p % l.channels];
  return out;
}

// What the passes read per position of a period.
struct Coeffs {
  int64_t period = 0;
  const float* shift = nullptr;   // statistics are summed around it
  const float* scale = nullptr;   // weight * invstd
  const float* offset = nullptr;  // bias - mean * scale
  const float* mean = nullptr;
  const float* invstd = nullptr;
  const float* mean_dz = nullptr;     // mean of the gradient before SiLU
  const float* mean_dz_xh = nullptr;  // mean of it times the normalized input
};

// Each pass is a loop over whole periods (vectors) and then the values of a
// last partial period. `n` counts from the start of a period.

// s1 += x - shift, s2 += (x - shift)^2.
template <typename T>
[[gnu::always_inline]] inline void MomentsBody(const T* x, int64_t n, const Coeffs& c, float* s1,
                                               float* s2) {
  int64_t i = 0;
  for (; i + c.period <= n; i += c.period) {
    for (int64_t k = 0; k < c.period; k += kLanes) {
      VecF v = Load(x + i + k) - Load(c.shift + k);
      Store(s1 + k, Load(s1 + k) + v);
      Store(s2 + k, Load(s2 + k) + v * v);
    }
  }
  for (int64_t p = 0; i < n; ++i, ++p) {
    float v = ToFloat(x[i]) - c.shift[p];
    s1[p] += v;
    s2[p] += v * v;
  }
}

// y = silu(x * scale + offset).
template <typename T>
[[gnu::always_inline]] inline void ApplyBody(const T* x, T* y, int64_t n, const Coeffs& c) {
  int64_t i = 0;
  for (; i + c.period <= n; i += c.period) {
    for (int64_t k = 0; k < c.period; k += kLanes) {
      VecF z = Load(x + i + k) * Load(c.scale + k) + Load(c.offset + k);
      Store(y + i + k, z * Sigmoid(z));
    }
  }
  for (int64_t p = 0; i < n; ++i, ++p) {
    float z = ToFloat(x[i]) * c.scale[p] + c.offset[p];
    Put(y + i, z * Sigmoid(z));
  }
}

// With dz the gradient before SiLU, kept for the next pass, and xh the
// normalized input: s1 += dz, s2 += dz * xh.
template <typename T>
[[gnu::always_inline]] inline void GradSumsBody(const T* x, const T* dy, float* dz, int64_t n,
                                                const Coeffs& c, float* s1, float* s2) {
  int64_t i = 0;
  for (; i + c.period <= n; i += c.period) {
    for (int64_t k = 0; k < c.period; k += kLanes) {
      VecF v = Load(x + i + k);
      VecF d = SiluGrad(v * Load(c.scale + k) + Load(c.offset + k), Load(dy + i + k));
      VecF xh = (v - Load(c.mean + k)) * Load(c.invstd + k);
      Store(dz + i + k, d);
      Store(s1 + k, Load(s1 + k) + d);
      Store(s2 + k, Load(s2 + k) + d * xh);
    }
  }
  for (int64_t p = 0; i < n; ++i, ++p) {
    float v = ToFloat(x[i]);
    dz[i] = SiluGrad(v * c.scale[p] + c.offset[p], ToFloat(dy[i]));
    s1[p] += dz[i];
    s2[p] += dz[i] * (v - c.mean[p]) * c.invstd[p];
  }
}

// dx = scale * (dz - mean(dz) - xh * mean(dz * xh)). dx may be dz.
template <typename T>
[[gnu::always_inline]] inline void GradApplyBody(const T* x, const float* dz, T* dx, int64_t n,
                                                 const Coeffs& c) {
  int64_t i = 0;
  for (; i + c.period <= n; i += c.period) {
    for (int64_t k = 0; k < c.period; k += kLanes) {
      VecF xh = (Load(x + i + k) - Load(c.mean + k)) * Load(c.invstd + k);
      VecF d = Load(dz + i + k) - Load(c.mean_dz + k) - xh * Load(c.mean_dz_xh + k);
      Store(dx + i + k, Load(c.scale + k) * d);
    }
  }
  for (int64_t p = 0; i < n; ++i, ++p) {
    float xh = (ToFloat(x[i]) - c.mean[p]) * c.invstd[p];
    Put(dx + i, c.scale[p] * (dz[i] - c.mean_dz[p] - xh * c.mean_dz_xh[p]));
  }
}

// The kernels, compiled per instruction set and per element type.
DETOPS_SIMD_CLONES void Moments(const float* x, int64_t n, const Coeffs& c, float* s1, float* s2) {
  MomentsBody(x, n, c, s1, s2);
}
DETOPS_SIMD_CLONES void Moments(const Bf16Bits* x, int64_t n, const Coeffs& c, float* s1,
                                float* s2) {
  MomentsBody(x, n, c, s1, s2);
}
DETOPS_SIMD_CLONES void Apply(const float* x, float* y, int64_t n, const Coeffs& c) {
  ApplyBody(x, y, n, c);
}
DETOPS_SIMD_CLONES void Apply(const Bf16Bits* x, Bf16Bits* y, int64_t n, const Coeffs& c) {
  ApplyBody(x, y, n, c);
}
DETOPS_SIMD_CLONES void GradSums(const float* x, const float* dy, float* dz, int64_t n,
                                 const Coeffs& c, float* s1, float* s2) {
  GradSumsBody(x, dy, dz, n, c, s1, s2);
}
DETOPS_SIMD_CLONES void GradSums(const Bf16Bits* x, const Bf16Bits* dy, float* dz, int64_t n,
                                 const Coeffs& c, float* s1, float* s2) {
  GradSumsBody(x, dy, dz, n, c, s1, s2);
}
DETOPS_SIMD_CLONES void GradApply(const float* x, const float* dz, float* dx, int64_t n,
                                  const Coeffs& c) {
  GradApplyBody(x, dz, dx, n, c);
}
DETOPS_SIMD_CLONES void GradApply(const Bf16Bits* x, const float* dz, Bf16Bits* dx, int64_t n,
                                  const Coeffs& c) {
  GradApplyBody(x, dz, dx, n, c);
}

// Runs `pass(begin, n)` over the blocks, in parallel.
template <typename F>
void ForBlocks(const Layout& l, F pass) {
  at::parallel_for(0, l.blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * l.block;
      pass(begin, std::min(l.total, begin + l.block) - begin);
    }
  });
}

// Two per-channel sums: `pass(begin, n, s1, s2)` sums one block into float
// partials per position, which are added up in double in block order, so
// the result does not depend on the thread count.
template <typename F>
std::pair<std::vector<double>, std::vector<double>> Sums(const Layout& l, F pass) {
  std::vector<float> partial(static_cast<size_t>(l.blocks * 2 * l.period), 0.f);
  at::parallel_for(0, l.blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * l.block;
      float* s = partial.data() + b * 2 * l.period;
      pass(begin, std::min(l.total, begin + l.block) - begin, s, s + l.period);
    }
  });
  std::vector<double> s1(static_cast<size_t>(l.channels)), s2(s1.size());
  for (int64_t b = 0; b < l.blocks; ++b) {
    const float* s = partial.data() + b * 2 * l.period;
    for (int64_t p = 0; p < l.period; ++p) {
      s1[p % l.channels] += s[p];
      s2[p % l.channels] += s[l.period + p];
    }
  }
  return {s1, s2};
}

std::vector<float> ToVector(const torch::Tensor& t) {
  torch::Tensor f = t.detach().to(torch::kFloat).contiguous();
  return {f.data_ptr<float>(), f.data_ptr<float>() + f.numel()};
}

template <typename T>
const T* Data(const torch::Tensor& t) {
  return reinterpret_cast<const T*>(t.data_ptr());
}
template <typename T>
T* MutableData(torch::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

// Calls f with a value of the element type of x.
template <typename F>
void ByType(const torch::Tensor& x, F f) {
  if (x.scalar_type() == torch::kBFloat16) {
    f(Bf16Bits{});
  } else {
    f(float{});
  }
}

// Per-channel coefficients of the batch: scale and offset of the fused
// affine, the batch mean and 1 / std.
struct Affine {
  std::vector<float> scale, offset, mean, invstd;
};

Affine MakeAffine(const std::vector<float>& weight, const std::vector<float>& bias,
                  std::vector<float> mean, std::vector<float> invstd) {
  Affine a{{}, {}, std::move(mean), std::move(invstd)};
  for (size_t c = 0; c < weight.size(); ++c) {
    a.scale.push_back(weight[c] * a.invstd[c]);
    a.offset.push_back(bias[c] - a.mean[c] * a.scale.back());
  }
  return a;
}

class BnSiluFn : public torch::autograd::Function<BnSiluFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               torch::Tensor running_mean, torch::Tensor running_var,
                               double momentum, double eps) {
    const Layout l = MakeLayout(x);
    // Sums are taken around the first row's values: as close to the batch
    // mean as any sample, so the variance from them does not cancel (the
    // running mean can be far from it, at the start of training).
    std::vector<float> shift(static_cast<size_t>(l.channels));
    ByType(x, [&](auto t) {
      const auto* in = Data<decltype(t)>(x);
      for (int64_t ch = 0; ch < l.channels; ++ch) shift[ch] = ToFloat(in[ch]);
    });
    const std::vector<float> shift_p = Expand(l, shift);
    Coeffs c;
    c.period = l.period;
    c.shift = shift_p.data();
    std::pair<std::vector<double>, std::vector<double>> sums;
    ByType(x, [&](auto t) {
      using T = decltype(t);
      const T* in = Data<T>(x);
      sums = Sums(
          l, [&](int64_t b, int64_t n, float* s1, float* s2) { Moments(in + b, n, c, s1, s2); });
    });
    const double n = static_cast<double>(l.rows);
    std::vector<float> mean(shift.size()), invstd(shift.size());
    std::vector<float> new_mean = ToVector(running_mean), new_var = ToVector(running_var);
    for (size_t ch = 0; ch < shift.size(); ++ch) {
      const double m = sums.first[ch] / n;
      const double var = std::max(0.0, sums.second[ch] / n - m * m);
      mean[ch] = static_cast<float>(shift[ch] + m);
      invstd[ch] = static_cast<float>(1.0 / std::sqrt(var + eps));
      new_mean[ch] = static_cast<float>((1 - momentum) * new_mean[ch] + momentum * mean[ch]);
      new_var[ch] = static_cast<float>((1 - momentum) * new_var[ch] + momentum * var * n / (n - 1));
    }
    {
      torch::NoGradGuard no_grad;
      running_mean.copy_(torch::tensor(new_mean));
      running_var.copy_(torch::tensor(new_var));
    }
    Affine a = MakeAffine(ToVector(weight), ToVector(bias), mean, invstd);
    std::vector<float> scale_p = Expand(l, a.scale), offset_p = Expand(l, a.offset);
    c.scale = scale_p.data();
    c.offset = offset_p.data();
    torch::Tensor y = torch::empty_like(x);
    ByType(x, [&](auto t) {
      using T = decltype(t);
      const T* in = Data<T>(x);
      T* out = MutableData<T>(y);
      ForBlocks(l, [&](int64_t b, int64_t count) { Apply(in + b, out + b, count, c); });
    });
    ctx->save_for_backward({x, weight, bias});
    ctx->saved_data["mean"] = torch::tensor(mean);
    ctx->saved_data["invstd"] = torch::tensor(invstd);
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    torch::autograd::tensor_list none(7);
    if (!grads[0].defined()) return none;
    // The gradient is walked in x's memory order, so it needs x's type and
    // layout.
    torch::Tensor dy = grads[0].to(x.scalar_type()).contiguous(torch::MemoryFormat::ChannelsLast);
    const Layout l = MakeLayout(x);
    Affine a = MakeAffine(ToVector(saved[1]), ToVector(saved[2]),
                          ToVector(ctx->saved_data["mean"].toTensor()),
                          ToVector(ctx->saved_data["invstd"].toTensor()));
    std::vector<float> scale_p = Expand(l, a.scale), offset_p = Expand(l, a.offset),
                       mean_p = Expand(l, a.mean), invstd_p = Expand(l, a.invstd);
    Coeffs c;
    c.period = l.period;
    c.scale = scale_p.data();
    c.offset = offset_p.data();
    c.mean = mean_p.data();
    c.invstd = invstd_p.data();
    // dz between the passes: in dx itself in fp32, else in an fp32 buffer
    // (SiLU's slope costs an exp, so it is computed once).
    torch::Tensor dx = torch::empty_like(x);
    torch::Tensor dz_buffer = x.scalar_type() == torch::kFloat
                                  ? dx
                                  : torch::empty(x.sizes(), x.options().dtype(torch::kFloat));
    float* dz = dz_buffer.data_ptr<float>();
    std::pair<std::vector<double>, std::vector<double>> sums;
    ByType(x, [&](auto t) {
      using T = decltype(t);
      const T *in = Data<T>(x), *g = Data<T>(dy);
      sums = Sums(l, [&](int64_t b, int64_t n, float* s1, float* s2) {
        GradSums(in + b, g + b, dz + b, n, c, s1, s2);
      });
    });
    const double n = static_cast<double>(l.rows);
    std::vector<float> dbeta(sums.first.begin(), sums.first.end());
    std::vector<float> dgamma(sums.second.begin(), sums.second.end());
    std::vector<float> m1(dbeta.size()), m2(dbeta.size());
    for (size_t ch = 0; ch < m1.size(); ++ch) {
      m1[ch] = static_cast<float>(sums.first[ch] / n);
      m2[ch] = static_cast<float>(sums.second[ch] / n);
    }
    std::vector<float> m1_p = Expand(l, m1), m2_p = Expand(l, m2);
    c.mean_dz = m1_p.data();
    c.mean_dz_xh = m2_p.data();
    ByType(x, [&](auto t) {
      using T = decltype(t);
      const T* in = Data<T>(x);
      T* out = MutableData<T>(dx);
      ForBlocks(l, [&](int64_t b, int64_t count) { GradApply(in + b, dz + b, out + b, count, c); });
    });
    none[0] = dx;
    none[1] = torch::tensor(dgamma).to(saved[1].scalar_type());
    none[2] = torch::tensor(dbeta).to(saved[2].scalar_type());
    return none;
  }
};

}  // namespace

bool CanFuseBnSilu(const torch::Tensor& x) {
  return x.defined() && x.is_cpu() && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         x.size(1) > 0 && x.numel() / x.size(1) > 1 &&
         x.is_contiguous(torch::MemoryFormat::ChannelsLast);
}

torch::Tensor BnSiluTrain(const torch::Tensor& x, torch::nn::BatchNorm2dImpl& bn) {
  const auto& o = bn.options;
  if (!bn.is_training() || !o.affine() || !o.track_running_stats() || !CanFuseBnSilu(x)) {
    return Silu(bn.forward(x));
  }
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
  }
  const double momentum = o.momentum().has_value()
                              ? *o.momentum()
                              : 1.0 / static_cast<double>(bn.num_batches_tracked.item<int64_t>());
  return BnSiluFn::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, o.eps());
}

}  // namespace detops::ml

#include "ml/optimizer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "ml/simd.h"

namespace detops::ml {
namespace {

using namespace simd;
#pragma GCC diagnostic ignored "-Wpsabi"

// Makes `tensors` (dense, of one type) views into one new buffer, in order,
// values and strides kept; returns the buffer.
torch::Tensor Flatten(std::vector<torch::Tensor> tensors) {
  int64_t total = 0;
  for (const auto& t : tensors) total += t.numel();
  torch::Tensor flat = torch::empty({total}, tensors.at(0).options());
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& t : tensors) {
    torch::Tensor view = flat.as_strided(t.sizes(), t.strides(), offset);
    view.copy_(t);
    t.set_data(view);
    offset += t.numel();
  }
  return flat;
}

// Views of `flat` shaped as `like`, in order.
std::vector<torch::Tensor> ViewsLike(const torch::Tensor& flat,
                                     const std::vector<torch::Tensor>& like) {
  std::vector<torch::Tensor> out;
  int64_t offset = 0;
  for (const auto& t : like) {
    out.push_back(flat.as_strided(t.sizes(), t.strides(), offset));
    offset += t.numel();
  }
  return out;
}

struct StepArgs {
  float beta1, beta2, eps, step_size, inv_sqrt_bc2, grad_scale, ema;
};

[[gnu::always_inline]] inline VecF Sqrt(VecF x) {
  VecF r;
  for (int j = 0; j < kLanes; ++j) r[j] = __builtin_sqrtf(x[j]);
  return r;
}

// Decay and moments, as torch::optim::AdamW computes them.
template <typename V>
[[gnu::always_inline]] inline void Moments(V& w, V g, V& m, V& v, float decay_factor,
                                           const StepArgs& a) {
  g = g * a.grad_scale;
  w = w * decay_factor;
  m = m * a.beta1 + g * (1 - a.beta1);
  v = v * a.beta2 + g * g * (1 - a.beta2);
}

// AdamW (decay, moments, bias-corrected update), then the EMA, on [0, n).
DETOPS_SIMD_CLONES
void AdamWPass(float* w, const float* g, float* m, float* v, float* e, int64_t n,
               float decay_factor, const StepArgs& a) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    VecF wv = Load(w + i), mv = Load(m + i), vv = Load(v + i), ev = Load(e + i);
    Moments(wv, Load(g + i), mv, vv, decay_factor, a);
    VecF denom = Sqrt(vv) * a.inv_sqrt_bc2 + a.eps;
    wv = wv - a.step_size * mv / denom;
    ev = ev * a.ema + wv * (1 - a.ema);
    Store(w + i, wv);
    Store(m + i, mv);
    Store(v + i, vv);
    Store(e + i, ev);
  }
  for (; i < n; ++i) {
    Moments(w[i], g[i], m[i], v[i], decay_factor, a);
    w[i] = w[i] - a.step_size * m[i] / (std::sqrt(v[i]) * a.inv_sqrt_bc2 + a.eps);
    e[i] = e[i] * a.ema + w[i] * (1 - a.ema);
  }
}

}  // namespace

FusedAdamW::FusedAdamW(DetectorNet& net, DetectorNet& ema, double weight_decay, double beta1,
                       double beta2, double eps)
    : weight_decay_(weight_decay), beta1_(beta1), beta2_(beta2), eps_(eps) {
  auto net_params = net->parameters();
  auto ema_params = ema->parameters();
  TORCH_CHECK(net_params.size() == ema_params.size(), "EMA of another architecture");
  std::vector<torch::Tensor> ema_order;
  for (int pass = 0; pass < 2; ++pass) {  // decayed first
    for (size_t i = 0; i < net_params.size(); ++i) {
      if ((net_params[i].dim() > 1) != (pass == 0)) continue;
      params_.push_back(net_params[i]);
      ema_order.push_back(ema_params[i]);
      if (pass == 0) decayed_ += net_params[i].numel();
    }
  }
  weights_ = Flatten(params_);
  ema_weights_ = Flatten(ema_order);
  grads_ = torch::zeros_like(weights_);
  auto grad_views = ViewsLike(grads_, params_);
  for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = grad_views[i];
  exp_avg_ = torch::zeros_like(weights_);
  exp_avg_sq_ = torch::zeros_like(weights_);
  cpu_kernel_ = weights_.is_cpu();
  // Buffers, one flat pair per type (float statistics, int64 counters).
  auto net_buffers = net->buffers();
  auto ema_buffers = ema->buffers();
  for (auto type : {torch::kFloat, torch::kLong}) {
    std::vector<torch::Tensor> a, b;
    for (size_t i = 0; i < net_buffers.size(); ++i) {
      if (net_buffers[i].scalar_type() != type) continue;
      a.push_back(net_buffers[i]);
      b.push_back(ema_buffers[i]);
    }
    if (!a.empty()) buffers_.emplace_back(Flatten(a), Flatten(b));
  }
}

void FusedAdamW::ZeroGrad() {
  grads_.zero_();
  grad_scale_ = 1;
}

double FusedAdamW::ClipGradNorm(double max_norm) {
  const double norm = grads_.norm().item<double>();
  const double coef = max_norm / (norm + 1e-6);
  grad_scale_ = coef < 1 ? coef : 1;
  return norm;
}

void FusedAdamW::Step(double lr, double ema_decay) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(beta1_, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(beta2_, static_cast<double>(step_));
  if (!cpu_kernel_) {
    // The same arithmetic as operators on the flat buffers.
    torch::Tensor g = grads_ * grad_scale_;
    weights_.slice(0, 0, decayed_).mul_(1 - lr * weight_decay_);
    exp_avg_.mul_(beta1_).add_(g, 1 - beta1_);
    exp_avg_sq_.mul_(beta2_).addcmul_(g, g, 1 - beta2_);
    torch::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bc2)).add_(eps_);
    weights_.addcdiv_(exp_avg_, denom, -lr / bc1);
    ema_weights_.mul_(ema_decay).add_(weights_, 1 - ema_decay);
    for (auto& [net, ema] : buffers_) ema.copy_(net);
    return;
  }
  StepArgs a{};
  a.beta1 = static_cast<float>(beta1_);
  a.beta2 = static_cast<float>(beta2_);
  a.eps = static_cast<float>(eps_);
  a.step_size = static_cast<float>(lr / bc1);
  a.inv_sqrt_bc2 = static_cast<float>(1 / std::sqrt(bc2));
  a.grad_scale = static_cast<float>(grad_scale_);
  a.ema = static_cast<float>(ema_decay);
  const float decay_factor = static_cast<float>(1 - lr * weight_decay_);
  float* w = weights_.data_ptr<float>();
  const float* g = grads_.data_ptr<float>();
  float* m = exp_avg_.data_ptr<float>();
  float* v = exp_avg_sq_.data_ptr<float>();
  float* e = ema_weights_.data_ptr<float>();
  const int64_t decayed = decayed_;
  at::parallel_for(0, weights_.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    // The decayed part, then the rest; begin stays a multiple of the grain.
    const int64_t split = std::clamp(decayed, begin, end);
    AdamWPass(w + begin, g + begin, m + begin, v + begin, e + begin, split - begin, decay_factor,
              a);
    AdamWPass(w + split, g + split, m + split, v + split, e + split, end - split, 1.f, a);
  });
  for (auto& [net, ema] : buffers_) ema.copy_(net);
}

void FusedAdamW::Save(torch::serialize::OutputArchive& archive) const {
  archive.write("fused_adamw/step", c10::IValue(step_));
  archive.write("fused_adamw/exp_avg", exp_avg_, /*is_buffer=*/true);
  archive.write("fused_adamw/exp_avg_sq", exp_avg_sq_, /*is_buffer=*/true);
}

Status FusedAdamW::Load(torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  c10::IValue step;
  if (archive.try_read("fused_adamw/step", step)) {
    torch::Tensor m, v;
    if (!step.isInt() || !archive.try_read("fused_adamw/exp_avg", m, true) ||
        !archive.try_read("fused_adamw/exp_avg_sq", v, true) ||
        !m.sizes().equals(exp_avg_.sizes()) || !v.sizes().equals(exp_avg_sq_.sizes())) {
      return Status::Corruption("optimizer state does not match the model");
    }
    exp_avg_.copy_(m);
    exp_avg_sq_.copy_(v);
    step_ = step.toInt();
    return Status::Ok();
  }
  // torch::optim::AdamW's format: it maps saved states to parameters by
  // position within its groups, so the same two groups are rebuilt.
  const auto split = std::find_if(params_.begin(), params_.end(),
                                  [](const torch::Tensor& p) { return p.dim() <= 1; });
  std::vector<torch::Tensor> decayed(params_.begin(), split), rest(split, params_.end());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(1e-3).weight_decay(weight_decay_)));
  groups.emplace_back(rest, std::make_unique<torch::optim::AdamWOptions>(
                                torch::optim::AdamWOptions(1e-3).weight_decay(0)));
  torch::optim::AdamW old(std::move(groups), torch::optim::AdamWOptions(1e-3));
  try {
    old.load(archive);
  } catch (const c10::Error& e) {
    return Status::Corruption(std::string("optimizer state: ") + e.what_without_backtrace());
  }
  auto m_views = ViewsLike(exp_avg_, params_);
  auto v_views = ViewsLike(exp_avg_sq_, params_);
  step_ = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = old.state().find(c10::guts::to_string(params_[i].unsafeGetTensorImpl()));
    if (it == old.state().end()) continue;  // never stepped
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    m_views[i].copy_(s.exp_avg());
    v_views[i].copy_(s.exp_avg_sq());
    step_ = s.step();
  }
  return Status::Ok();
}

}  // namespace detops::ml

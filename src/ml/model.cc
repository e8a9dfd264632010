#include "ml/model.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "ml/bf16.h"
#include "ml/bn_silu.h"
#include "ml/pretrained.h"
#include "ml/simd.h"

namespace detops::ml {
namespace {

struct Widths {
  int c[5];
  int depth[4];
};

// n: 1.4 M parameters, 1.1 GFLOPs at 320 px; s: 5.8 M, 4.6 GFLOPs. The head
// width is the stride-8 width (48 or 96), so most compute stays in the
// backbone and neck.
Widths WidthsFor(const std::string& variant) {
  if (variant == "s") return {{32, 64, 96, 192, 320}, {1, 2, 2, 1}};
  return {{16, 32, 48, 96, 160}, {1, 1, 1, 1}};  // "n", and the neck of a pretrained backbone
}

constexpr int kStrides[3] = {8, 16, 32};

}  // namespace

ConvBnImpl::ConvBnImpl(int in, int out, int k, int s) : stride(s), pad(k / 2) {
  conv = register_module(
      "conv",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(s).padding(k / 2).bias(false)));
  bn = register_module(
      "bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out).eps(1e-3).momentum(0.03)));
}

void ConvBnImpl::Fuse(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  torch::Tensor scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  // Folded in fp32, rounded once.
  fused_weight = (conv->weight * scale.view({-1, 1, 1, 1}))
                     .to(dtype)
                     .contiguous(conv->weight.suggest_memory_format());
  fused_bias = (bn->bias - bn->running_mean * scale).to(dtype).contiguous();
}

void ConvBnImpl::Unfuse() {
  fused_weight = torch::Tensor();
  fused_bias = torch::Tensor();
}

torch::Tensor ConvBnImpl::forward(torch::Tensor x) {
  if (fused_weight.defined()) {
    torch::Tensor y = torch::conv2d(x, fused_weight, fused_bias, stride, pad);
    // LibTorch 1.13's bf16 SiLU takes as long as the convolution before it.
    SiluInPlace(y);
    return y;
  }
  // Training: one fused kernel (bn_silu.h). bf16 under autocast (bf16.h).
  torch::Tensor y = conv(x);
  y = is_training() && CanFuseBnSilu(y) ? BnSiluTrain(y, *bn) : Silu(bn(y));
  if (flops) {
    const auto& o = conv->options;
    int64_t k = o.kernel_size()->at(0) * o.kernel_size()->at(1);
    *flops += 2 * (y.numel() / y.size(0)) * o.in_channels() * k;
  }
  return y;
}

CspImpl::CspImpl(int in, int out, int n, bool shortcut_) : shortcut(shortcut_) {
  int c = out / 2;
  cv1 = register_module("cv1", ConvBn(in, 2 * c, 1));
  cv2 = register_module("cv2", ConvBn((2 + n) * c, out, 1));
  for (int i = 0; i < n; ++i) {
    ConvBn a = register_module("b" + std::to_string(i) + "a", ConvBn(c, c, 3));
    ConvBn b = register_module("b" + std::to_string(i) + "b", ConvBn(c, c, 3));
    blocks.emplace_back(a, b);
  }
}

torch::Tensor CspImpl::forward(torch::Tensor x) {
  auto parts = cv1(x).chunk(2, 1);
  std::vector<torch::Tensor> ys = {parts[0], parts[1]};
  for (auto& [a, b] : blocks) {
    torch::Tensor y = b(a(ys.back()));
    ys.push_back(shortcut ? ys.back() + y : y);
  }
  return cv2(torch::cat(ys, 1));
}

SppfImpl::SppfImpl(int c) {
  cv1 = register_module("cv1", ConvBn(c, c / 2, 1));
  cv2 = register_module("cv2", ConvBn(c * 2, c, 1));
}

torch::Tensor SppfImpl::forward(torch::Tensor x) {
  auto pool = [](const torch::Tensor& t) { return torch::max_pool2d(t, {5, 5}, {1, 1}, {2, 2}); };
  torch::Tensor a = cv1(x);
  torch::Tensor b = pool(a);
  torch::Tensor c = pool(b);
  return cv2(torch::cat({a, b, c, pool(c)}, 1));
}

NetConfig NetConfigFor(const ModelConfig& c) {
  return {c.variant, static_cast<int>(c.classes.size()), c.backbone};
}

DetectorNetImpl::DetectorNetImpl(const NetConfig& cfg) : config(cfg) {
  Widths w = WidthsFor(cfg.variant);
  const int* c = w.c;
  const int* d = w.depth;
  using torch::nn::Sequential;
  if (!cfg.backbone.is_null()) {
    backbone = register_module("backbone", TfjsNet(cfg.backbone));
    const std::vector<int64_t> in = backbone->OutputChannels();
    if (in.size() != 3) throw std::invalid_argument("a backbone needs three outputs");
    lat3 = register_module("lat3", ConvBn(static_cast<int>(in[0]), c[2], 1));
    lat4 = register_module("lat4", ConvBn(static_cast<int>(in[1]), c[3], 1));
    lat5 = register_module("lat5", ConvBn(static_cast<int>(in[2]), c[4], 1));
  } else {
    stem = register_module("stem", Sequential(ConvBn(3, c[0], 3, 2)));
    s1 = register_module("s1", Sequential(ConvBn(c[0], c[1], 3, 2), Csp(c[1], c[1], d[0], true)));
    s2 = register_module("s2", Sequential(ConvBn(c[1], c[2], 3, 2), Csp(c[2], c[2], d[1], true)));
    s3 = register_module("s3", Sequential(ConvBn(c[2], c[3], 3, 2), Csp(c[3], c[3], d[2], true)));
    s4 = register_module(
        "s4", Sequential(ConvBn(c[3], c[4], 3, 2), Csp(c[4], c[4], d[3], true), Sppf(c[4])));
  }
  top4 = register_module("top4", Csp(c[4] + c[3], c[3], d[0], false));
  top3 = register_module("top3", Csp(c[3] + c[2], c[2], d[0], false));
  red3 = register_module("red3", ConvBn(c[2], c[2], 3, 2));
  down4 = register_module("down4", Csp(c[2] + c[3], c[3], d[0], false));
  red4 = register_module("red4", ConvBn(c[3], c[3], 3, 2));
  down5 = register_module("down5", Csp(c[3] + c[4], c[4], d[0], false));

  cls_heads = register_module("cls_heads", torch::nn::ModuleList());
  box_heads = register_module("box_heads", torch::nn::ModuleList());
  cls_out = register_module("cls_out", torch::nn::ModuleList());
  box_out = register_module("box_out", torch::nn::ModuleList());
  const int level_c[3] = {c[2], c[3], c[4]};
  const int hidden = c[2];
  const double prior = 0.01;
  for (int i = 0; i < 3; ++i) {
    cls_heads->push_back(Sequential(ConvBn(level_c[i], hidden, 3), ConvBn(hidden, hidden, 3)));
    box_heads->push_back(Sequential(ConvBn(level_c[i], hidden, 3), ConvBn(hidden, hidden, 3)));
    auto co = torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, cfg.num_classes, 1));
    auto bo = torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, 4, 1));
    torch::NoGradGuard no_grad;
    co->bias.fill_(-std::log((1 - prior) / prior));  // rare positives at the start
    bo->bias.zero_();
    bo->weight.mul_(0.1);
    cls_out->push_back(co);
    box_out->push_back(bo);
  }
}

HeadOutput DetectorNetImpl::forward(torch::Tensor x) {
  torch::Tensor c3, c4, c5;
  if (backbone) {
    std::vector<torch::Tensor> f = backbone->forward(x);
    c3 = lat3(f[0]);
    c4 = lat4(f[1]);
    c5 = lat5(f[2]);
  } else {
    c3 = s2->forward(s1->forward(stem->forward(x)));
    c4 = s3->forward(c3);
    c5 = s4->forward(c4);
  }
  auto up = [](const torch::Tensor& t) {
    return torch::upsample_nearest2d(t, {t.size(2) * 2, t.size(3) * 2});
  };
  torch::Tensor t4 = top4(torch::cat({up(c5), c4}, 1));
  torch::Tensor p3 = top3(torch::cat({up(t4), c3}, 1));
  torch::Tensor p4 = down4(torch::cat({red3(p3), t4}, 1));
  torch::Tensor p5 = down5(torch::cat({red4(p4), c5}, 1));
  torch::Tensor levels[3] = {p3, p4, p5};
  std::vector<torch::Tensor> logits, boxes;
  const int64_t b = x.size(0);
  // bf16 inference (FuseBatchNorm): the output convolutions run in fp32, as
  // their parameters are. Under training's autocast the types are its own.
  auto out = [&](torch::nn::Module& conv, torch::nn::Module& head, const torch::Tensor& level) {
    auto* c = conv.as<torch::nn::Conv2d>();
    torch::Tensor h = head.as<torch::nn::Sequential>()->forward(level);
    if (!is_training() && h.scalar_type() != c->weight.scalar_type()) {
      h = h.to(c->weight.scalar_type());
    }
    return c->forward(h);
  };
  for (int i = 0; i < 3; ++i) {
    torch::Tensor cl = out(*cls_out[i], *cls_heads[i], levels[i]);
    torch::Tensor bx = out(*box_out[i], *box_heads[i], levels[i]);
    logits.push_back(cl.permute({0, 2, 3, 1}).reshape({b, -1, config.num_classes}));
    boxes.push_back(bx.permute({0, 2, 3, 1}).reshape({b, -1, 4}));
  }
  torch::Tensor embedding = c5.mean({2, 3});
  if (!is_training()) embedding = embedding.to(torch::kFloat);
  return {torch::cat(logits, 1), torch::cat(boxes, 1), embedding};
}

void FuseBatchNorm(DetectorNet& net, torch::ScalarType dtype) {
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (auto* c = m->as<ConvBnImpl>()) c->Fuse(dtype);
  }
  if (net->backbone) net->backbone->SetInferenceDtype(dtype);
}

void UnfuseBatchNorm(DetectorNet& net) {
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (auto* c = m->as<ConvBnImpl>()) c->Unfuse();
  }
  if (net->backbone) net->backbone->SetInferenceDtype(torch::kFloat);
}

torch::MemoryFormat LayoutFor(torch::Device device) {
  return device.is_cpu() ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
}

void ToLayout(DetectorNet& net, torch::MemoryFormat layout) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(layout));
  }
}

torch::Tensor InputFromBgr(const torch::Tensor& bgr, torch::Device device,
                           torch::ScalarType dtype) {
  if (!device.is_cpu()) {
    return bgr.to(device)
        .permute({0, 3, 1, 2})
        .flip(1)
        .to(torch::kFloat)
        .div_(255.0)
        .to(dtype)
        .contiguous(LayoutFor(device));
  }
  // On the CPU the channels-last floats are the bytes in their own order,
  // each pixel's three reversed: one pass instead of flip, convert, scale
  // and reorder (LibTorch's flip alone took 2.6 ms for a training batch).
  torch::Tensor in = bgr.contiguous();
  const int64_t n = in.size(0), h = in.size(1), w = in.size(2);
  torch::Tensor out = torch::empty({n, 3, h, w}, torch::TensorOptions().dtype(dtype).memory_format(
                                                     torch::MemoryFormat::ChannelsLast));
  const uint8_t* src = in.data_ptr<uint8_t>();
  auto convert = [&](auto* dst) {
    at::parallel_for(0, n * h * w, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        for (int c = 0; c < 3; ++c) {
          simd::Put(dst + 3 * p + c, static_cast<float>(src[3 * p + 2 - c]) / 255.f);
        }
      }
    });
  };
  if (dtype == torch::kBFloat16) {
    convert(reinterpret_cast<simd::Bf16Bits*>(out.data_ptr<at::BFloat16>()));
  } else {
    convert(out.data_ptr<float>());
  }
  return out;
}

Grid MakeGrid(int size, torch::Device device) {
  std::vector<float> centers, strides;
  for (int s : kStrides) {
    int n = size / s;
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        centers.push_back((x + 0.5f) * s);
        centers.push_back((y + 0.5f) * s);
        strides.push_back(static_cast<float>(s));
      }
    }
  }
  auto a = static_cast<int64_t>(strides.size());
  return {torch::from_blob(centers.data(), {a, 2}).clone().to(device),
          torch::from_blob(strides.data(), {a}).clone().to(device)};
}

torch::Tensor DecodeBoxes(const torch::Tensor& box, const Grid& grid) {
  torch::Tensor s = grid.strides.view({1, -1, 1});
  torch::Tensor xy = grid.centers.unsqueeze(0) + box.slice(2, 0, 2) * s;
  torch::Tensor wh = torch::exp(box.slice(2, 2, 4).clamp(-8.0, 8.0)) * s;
  return torch::cat({xy - wh / 2, xy + wh / 2}, 2);
}

int64_t CountParameters(DetectorNet& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

double EstimateFlops(DetectorNet& net, int size) {
  int64_t flops = 0;
  for (auto& m : net->modules(/*include_self=*/false)) {
    if (auto* cb = m->as<ConvBnImpl>()) cb->flops = &flops;
  }
  if (net->backbone) net->backbone->flops = &flops;
  {
    torch::NoGradGuard no_grad;
    bool was_training = net->is_training();
    net->eval();
    net->forward(torch::zeros({1, 3, size, size}));
    net->train(was_training);
  }
  for (auto& m : net->modules(false)) {
    if (auto* cb = m->as<ConvBnImpl>()) cb->flops = nullptr;
  }
  if (net->backbone) net->backbone->flops = nullptr;
  // The 1x1 output convolutions.
  int64_t locations = 0;
  for (int s : kStrides) locations += (size / s) * (size / s);
  int hidden = WidthsFor(net->config.variant).c[2];
  flops += 2 * locations * hidden * (net->config.num_classes + 4);
  return static_cast<double>(flops);
}

}  // namespace detops::ml

namespace detops {

Status CheckVariant(const std::string& variant) {
  if (variant == "n" || variant == "s" || ml::FindPretrainedVariant(variant)) return Status::Ok();
  std::string known = "n, s";
  for (const ml::PretrainedVariant& v : ml::PretrainedVariants()) known += ", " + v.variant;
  return Status::InvalidInput("--model must be one of " + known + "; got '" + variant + "'");
}

}  // namespace detops

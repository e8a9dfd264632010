#include "ml/tfjs_net.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

namespace detops::ml {
namespace {

namespace F = torch::nn::functional;

const std::set<std::string>& ConvOps() {
  static const std::set<std::string> ops = {"_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative",
                                            "DepthwiseConv2dNative"};
  return ops;
}

bool IsDepthwise(const std::string& op) { return op.find("Depthwise") != std::string::npos; }

const std::set<std::string>& SupportedOps() {
  static const std::set<std::string> ops = {"Placeholder",
                                            "Identity",
                                            "_FusedConv2D",
                                            "Conv2D",
                                            "FusedDepthwiseConv2dNative",
                                            "DepthwiseConv2dNative",
                                            "Add",
                                            "AddV2",
                                            "Sub",
                                            "Mul",
                                            "Relu",
                                            "Relu6",
                                            "Sigmoid",
                                            "Tanh",
                                            "Mean",
                                            "ConcatV2",
                                            "ResizeBilinear"};
  return ops;
}

// TensorFlow's NHWC axis as an NCHW one.
int64_t NchwAxis(int64_t axis) {
  if (axis < 0) axis += 4;
  static const int64_t map[4] = {0, 2, 3, 1};
  return axis >= 0 && axis < 4 ? map[axis] : axis;
}

std::vector<int64_t> Shape(const Json& j) { return j.get<std::vector<int64_t>>(); }

// The parameter's value in LibTorch's layout: filters HWIO -> OIHW,
// depthwise H W C M -> [C * M, 1, H, W].
torch::Tensor ParamValue(const TfjsTensor& t, bool filter, bool depthwise) {
  torch::Tensor v =
      torch::from_blob(const_cast<float*>(t.floats.data()), t.shape, torch::kFloat).clone();
  if (!filter) return v;
  if (depthwise) {
    const int64_t c = t.shape[2], m = t.shape[3];
    return v.permute({2, 3, 0, 1}).reshape({c * m, 1, t.shape[0], t.shape[1]}).contiguous();
  }
  return v.permute({3, 2, 0, 1}).contiguous();
}

Json NodeJson(const TfjsNode& n) {
  Json j = {{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}};
  if (n.strides.size() == 4) j["strides"] = {n.strides[1], n.strides[2]};
  if (n.dilations.size() == 4) j["dilations"] = {n.dilations[1], n.dilations[2]};
  if (n.ksize.size() == 4) j["ksize"] = {n.ksize[1], n.ksize[2]};
  if (!n.padding.empty()) j["padding"] = n.padding;
  if (!n.fused_ops.empty()) j["fused"] = n.fused_ops;
  if (n.keep_dims) j["keep_dims"] = true;
  if (n.align_corners) j["align_corners"] = true;
  if (n.half_pixel_centers) j["half_pixel_centers"] = true;
  return j;
}

Status CheckNode(const TfjsNode& n) {
  if (!SupportedOps().count(n.op)) {
    return Status::InvalidInput("node '" + n.name + "': op " + n.op +
                                " is not supported by detops' TF.js import");
  }
  if (!n.data_format.empty() && n.data_format != "NHWC") {
    return Status::InvalidInput("node '" + n.name + "': data format " + n.data_format +
                                " (only NHWC)");
  }
  if (ConvOps().count(n.op)) {
    if (n.padding != "SAME" && n.padding != "VALID") {
      return Status::InvalidInput("node '" + n.name + "': padding '" + n.padding +
                                  "' (only SAME and VALID)");
    }
    const bool fused = n.op.rfind("Fused", 0) == 0 || n.op == "_FusedConv2D";
    if (fused) {
      const auto& f = n.fused_ops;
      const bool ok = !f.empty() && f[0] == "BiasAdd" &&
                      (f.size() == 1 || (f.size() == 2 && (f[1] == "Relu" || f[1] == "Relu6")));
      if (!ok || n.inputs.size() != 3) {
        std::string list;
        for (const std::string& s : f) list += (list.empty() ? "" : ",") + s;
        return Status::InvalidInput("node '" + n.name + "': fused ops [" + list +
                                    "] (only BiasAdd, then Relu or Relu6)");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TfjsGraph> ExtractTfjsGraph(const TfjsModel& model, const std::vector<std::string>& outputs,
                                   double input_scale) {
  std::map<std::string, const TfjsNode*> by_name;
  for (const TfjsNode& n : model.nodes) by_name[n.name] = &n;
  std::vector<const TfjsNode*> order;
  std::set<std::string> seen;
  Status status = Status::Ok();
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (!status.ok() || seen.count(name) || model.constants.count(name)) return;
    seen.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      status = Status::InvalidInput(model.json_path.string() + ": no node named '" + name + "'");
      return;
    }
    for (const std::string& in : it->second->inputs) visit(in.substr(0, in.find(':')));
    order.push_back(it->second);
  };
  for (const std::string& o : outputs) visit(o);
  RETURN_IF_ERROR(status);
  TfjsGraph g;
  Json nodes = Json::array(), params = Json::array(), consts = Json::object();
  std::map<std::string, int> param_index;
  for (const TfjsNode* n : order) {
    Status s = CheckNode(*n);
    if (!s.ok()) return Status::InvalidInput(model.json_path.string() + ": " + s.message());
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const std::string& in = n->inputs[i];
      auto c = model.constants.find(in);
      if (c == model.constants.end()) continue;
      const TfjsTensor& t = c->second;
      const bool conv = ConvOps().count(n->op) > 0;
      if (conv && (i == 1 || i == 2) && t.dtype == "float32") {
        if (param_index.count(in)) continue;
        torch::Tensor v = ParamValue(t, i == 1, IsDepthwise(n->op));
        param_index[in] = static_cast<int>(g.params.size());
        params.push_back({{"name", in}, {"shape", v.sizes().vec()}});
        g.params.push_back(v);
      } else if (!consts.contains(in)) {
        Json cj = {{"shape", t.shape}};
        if (t.dtype == "int32") {
          cj["ints"] = t.ints;
        } else {
          cj["floats"] = t.floats;
        }
        consts[in] = std::move(cj);
      }
    }
    nodes.push_back(NodeJson(*n));
  }
  g.spec = {{"format", "detops-tfjs-graph/1"},
            {"input", model.input},
            {"input_scale", input_scale},
            {"outputs", outputs},
            {"nodes", nodes},
            {"params", params},
            {"consts", consts}};
  return g;
}

Status CheckTfjsSpec(const Json& spec) {
  try {
    TfjsNet probe(spec);
    (void)probe;
  } catch (const std::exception& e) {
    return Status::InvalidInput(std::string("backbone spec: ") + e.what());
  }
  return Status::Ok();
}

TfjsNetImpl::TfjsNetImpl(const Json& s) : spec(s) {
  if (spec.value("format", "") != "detops-tfjs-graph/1") {
    throw std::invalid_argument("not a detops-tfjs-graph/1 spec");
  }
  input_scale_ = spec.value("input_scale", 1.0);
  std::map<std::string, int> param_of, node_of;
  int i = 0;
  for (const Json& p : spec.at("params")) {
    params_.push_back(register_parameter("t" + std::to_string(i), torch::zeros(Shape(p["shape"]))));
    param_of[p.at("name").get<std::string>()] = i++;
  }
  const Json& consts = spec.at("consts");
  int buffers = 0;
  for (const Json& n : spec.at("nodes")) {
    Step step;
    step.op = n.at("op").get<std::string>();
    if (n.contains("strides")) step.strides = n["strides"].get<std::vector<int64_t>>();
    if (n.contains("dilations")) step.dilations = n["dilations"].get<std::vector<int64_t>>();
    if (n.contains("ksize")) step.ksize = n["ksize"].get<std::vector<int64_t>>();
    step.padding = n.value("padding", "");
    if (n.contains("fused")) step.fused = n["fused"].get<std::vector<std::string>>();
    step.keep_dims = n.value("keep_dims", false);
    step.align_corners = n.value("align_corners", false);
    step.half_pixel_centers = n.value("half_pixel_centers", false);
    for (const Json& in_j : n.at("inputs")) {
      const std::string in = in_j.get<std::string>();
      Ref r;
      if (auto p = param_of.find(in); p != param_of.end()) {
        r.param = p->second;
      } else if (auto k = node_of.find(in); k != node_of.end()) {
        r.node = k->second;
      } else if (consts.contains(in)) {
        const Json& c = consts[in];
        const std::vector<int64_t> shape = Shape(c.at("shape"));
        if (c.contains("ints")) {
          r.ints = c["ints"].get<std::vector<int64_t>>();
        } else {
          std::vector<float> f = c.at("floats").get<std::vector<float>>();
          torch::Tensor t = torch::from_blob(f.data(), shape, torch::kFloat).clone();
          if (t.dim() == 1) {
            t = t.view({1, -1, 1, 1});  // NHWC's last axis: channels
          } else if (t.dim() == 4) {
            t = t.permute({0, 3, 1, 2}).contiguous();
          }
          r.constant = t.dim() == 0 ? t : register_buffer("c" + std::to_string(buffers++), t);
        }
      } else {
        throw std::invalid_argument("node '" + n.value("name", "") + "' reads '" + in +
                                    "', which is neither a node before it nor a constant");
      }
      step.in.push_back(std::move(r));
    }
    if (step.op != "Placeholder" && step.in.empty()) {
      throw std::invalid_argument("node '" + n.value("name", "") + "' has no inputs");
    }
    node_of[n.at("name").get<std::string>()] = static_cast<int>(steps_.size());
    steps_.push_back(std::move(step));
  }
  for (const Json& o : spec.at("outputs")) {
    auto it = node_of.find(o.get<std::string>());
    if (it == node_of.end()) throw std::invalid_argument("output '" + o.get<std::string>() + "'");
    outputs_.push_back(it->second);
  }
}

torch::Tensor TfjsNetImpl::Arg(const Ref& r, const std::vector<torch::Tensor>& values) const {
  if (r.node >= 0) return values[r.node];
  if (r.param >= 0) {
    return inference_params_.empty() || is_training() ? params_[r.param]
                                                      : inference_params_[r.param];
  }
  return r.constant;
}

torch::Tensor TfjsNetImpl::Conv(const Step& s, const std::vector<torch::Tensor>& v,
                                bool depthwise) {
  torch::Tensor x = Arg(s.in[0], v);
  torch::Tensor w = Arg(s.in[1], v);
  torch::Tensor b = s.in.size() > 2 ? Arg(s.in[2], v) : torch::Tensor();
  if (w.scalar_type() != x.scalar_type() && !at::autocast::is_cpu_enabled()) {
    w = w.to(x.scalar_type());
    if (b.defined()) b = b.to(x.scalar_type());
  }
  int64_t pad[2][2] = {{0, 0}, {0, 0}};  // (before, after) for H, W
  if (s.padding == "SAME") {
    for (int d = 0; d < 2; ++d) {
      const int64_t in = x.size(2 + d), stride = s.strides[d];
      const int64_t k = (w.size(2 + d) - 1) * s.dilations[d] + 1;
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
      pad[d][0] = total / 2;
      pad[d][1] = total - total / 2;
    }
  }
  std::vector<int64_t> padding = {pad[0][0], pad[1][0]};
  if (pad[0][0] != pad[0][1] || pad[1][0] != pad[1][1]) {
    x = F::pad(x, F::PadFuncOptions({pad[1][0], pad[1][1], pad[0][0], pad[0][1]}));
    padding = {0, 0};
  }
  const int64_t groups = depthwise ? x.size(1) : 1;
  torch::Tensor y = torch::conv2d(x, w, b, s.strides, padding, s.dilations, groups);
  if (s.fused.size() == 2) y = s.fused[1] == "Relu" ? y.relu_() : y.clamp_(0, 6);
  if (flops) *flops += 2 * (y.numel() / y.size(0)) * w.size(1) * w.size(2) * w.size(3);
  return y;
}

std::vector<torch::Tensor> TfjsNetImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> v(steps_.size());
  auto like = [](torch::Tensor t, const torch::Tensor& ref) {
    return t.scalar_type() == ref.scalar_type() || t.dim() == 0 ? t : t.to(ref.scalar_type());
  };
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    const std::string& op = s.op;
    if (op == "Placeholder") {
      v[i] = input_scale_ == 1 ? x : x * input_scale_;
    } else if (ConvOps().count(op)) {
      v[i] = Conv(s, v, IsDepthwise(op));
    } else if (op == "Identity") {
      v[i] = Arg(s.in[0], v);
    } else if (op == "Add" || op == "AddV2" || op == "Sub" || op == "Mul") {
      torch::Tensor a = Arg(s.in[0], v), b = Arg(s.in[1], v);
      if (s.in[0].node < 0) a = like(a, b);
      if (s.in[1].node < 0) b = like(b, a);
      v[i] = op == "Sub" ? a - b : op == "Mul" ? a * b : a + b;
    } else if (op == "Relu") {
      v[i] = torch::relu(Arg(s.in[0], v));
    } else if (op == "Relu6") {
      v[i] = torch::clamp(Arg(s.in[0], v), 0, 6);
    } else if (op == "Sigmoid") {
      v[i] = torch::sigmoid(Arg(s.in[0], v));
    } else if (op == "Tanh") {
      v[i] = torch::tanh(Arg(s.in[0], v));
    } else if (op == "Mean") {
      std::vector<int64_t> dims;
      for (int64_t a : s.in[1].ints) dims.push_back(NchwAxis(a));
      v[i] = Arg(s.in[0], v).mean(dims, s.keep_dims);
    } else if (op == "ConcatV2") {
      std::vector<torch::Tensor> parts;
      for (size_t k = 0; k + 1 < s.in.size(); ++k) parts.push_back(Arg(s.in[k], v));
      v[i] = torch::cat(parts, NchwAxis(s.in.back().ints.at(0)));
    } else if (op == "ResizeBilinear") {
      torch::Tensor t = Arg(s.in[0], v);
      const std::vector<int64_t> size = s.in[1].ints;
      if (s.align_corners || s.half_pixel_centers) {
        v[i] = F::interpolate(t, F::InterpolateFuncOptions()
                                     .size(size)
                                     .mode(torch::kBilinear)
                                     .align_corners(s.align_corners));
      } else {
        // TensorFlow 1's resize: source = destination * (in / out), no
        // half-pixel offset, clamped at the last row and column.
        auto axis = [&](int64_t in, int64_t out, torch::Tensor* lo, torch::Tensor* hi) {
          torch::Tensor src = torch::arange(out, torch::kFloat) * (static_cast<float>(in) / out);
          torch::Tensor l = src.floor().clamp_max(in - 1);
          *lo = l.to(torch::kLong).to(t.device());
          *hi = (l + 1).clamp_max(in - 1).to(torch::kLong).to(t.device());
          return (src - l).to(t.device()).to(t.scalar_type());
        };
        torch::Tensor y0, y1, x0, x1;
        torch::Tensor wy = axis(t.size(2), size[0], &y0, &y1).view({1, 1, -1, 1});
        torch::Tensor wx = axis(t.size(3), size[1], &x0, &x1).view({1, 1, 1, -1});
        torch::Tensor top = t.index_select(2, y0), bottom = t.index_select(2, y1);
        auto cols = [&](const torch::Tensor& r) {
          return r.index_select(3, x0) * (1 - wx) + r.index_select(3, x1) * wx;
        };
        v[i] = cols(top) * (1 - wy) + cols(bottom) * wy;
      }
    }
  }
  std::vector<torch::Tensor> out;
  for (int o : outputs_) out.push_back(v[o]);
  return out;
}

Status TfjsNetImpl::Assign(const std::vector<torch::Tensor>& values) {
  if (values.size() != params_.size()) {
    return Status::InvalidInput("backbone: " + std::to_string(values.size()) + " values for " +
                                std::to_string(params_.size()) + " parameters");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].sizes() != params_[i].sizes()) {
      return Status::InvalidInput("backbone parameter " +
                                  spec["params"][i].value("name", std::string()) +
                                  ": shape mismatch");
    }
    params_[i].copy_(values[i]);
  }
  return Status::Ok();
}

void TfjsNetImpl::SetInferenceDtype(torch::ScalarType dtype) {
  inference_params_.clear();
  if (dtype == torch::kFloat) return;
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : params_) {
    inference_params_.push_back(p.to(dtype).contiguous(p.suggest_memory_format()));
  }
}

std::vector<int64_t> TfjsNetImpl::OutputChannels() {
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  const torch::Device device = params_.empty() ? torch::kCPU : params_[0].device();
  std::vector<torch::Tensor> out = forward(torch::zeros({1, 3, 64, 64}, device));
  train(was_training);
  std::vector<int64_t> channels;
  for (const torch::Tensor& t : out) channels.push_back(t.size(1));
  return channels;
}

}  // namespace detops::ml

#include "ml/tfjs_model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "core/fs.h"

namespace detops::ml {
namespace {

std::string Base64Decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::vector<int64_t> IntList(const Json& attr) {
  std::vector<int64_t> out;
  if (!attr.contains("list") || !attr["list"].contains("i")) return out;
  for (const Json& v : attr["list"]["i"]) {
    out.push_back(v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>());
  }
  return out;
}

TfjsNode ParseNode(const Json& n) {
  TfjsNode node;
  node.name = n.value("name", "");
  node.op = n.value("op", "");
  if (n.contains("input")) {
    for (const Json& i : n["input"]) {
      const std::string s = i.get<std::string>();
      if (!s.empty() && s[0] != '^') node.inputs.push_back(s);
    }
  }
  if (!n.contains("attr")) return node;
  const Json& a = n["attr"];
  auto str = [&](const char* key) {
    return a.contains(key) && a[key].contains("s") ? Base64Decode(a[key]["s"].get<std::string>())
                                                   : std::string();
  };
  auto flag = [&](const char* key) {
    return a.contains(key) && a[key].contains("b") && a[key]["b"].get<bool>();
  };
  if (a.contains("strides")) node.strides = IntList(a["strides"]);
  if (a.contains("dilations")) node.dilations = IntList(a["dilations"]);
  if (a.contains("ksize")) node.ksize = IntList(a["ksize"]);
  if (a.contains("explicit_paddings")) node.explicit_paddings = IntList(a["explicit_paddings"]);
  node.padding = str("padding");
  node.data_format = str("data_format");
  if (a.contains("fused_ops") && a["fused_ops"].contains("list") &&
      a["fused_ops"]["list"].contains("s")) {
    for (const Json& s : a["fused_ops"]["list"]["s"]) {
      node.fused_ops.push_back(Base64Decode(s.get<std::string>()));
    }
  }
  node.keep_dims = flag("keep_dims");
  node.align_corners = flag("align_corners");
  node.half_pixel_centers = flag("half_pixel_centers");
  if (a.contains("epsilon") && a["epsilon"].contains("f")) {
    node.epsilon = a["epsilon"]["f"].get<double>();
  }
  return node;
}

template <typename T>
T ReadLe(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the weights are little-endian, as this machine
  return v;
}

}  // namespace

int64_t TfjsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(frac), -24);  // subnormal (or zero)
  } else if (exp == 31) {
    v = frac ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(frac | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

Result<TfjsModel> ReadTfjsModel(const std::filesystem::path& json_path) {
  const std::string what = json_path.string();
  ASSIGN_OR_RETURN(std::string text, ReadFile(json_path));
  ASSIGN_OR_RETURN(Json j, ParseJson(text, what));
  TfjsModel m;
  m.json_path = json_path;
  m.format = j.value("format", "");
  if (m.format != "graph-model" || !j.contains("modelTopology") ||
      !j["modelTopology"].contains("node") || !j.contains("weightsManifest")) {
    return Status::InvalidInput(what +
                                ": not a TensorFlow.js graph model (needs format graph-model, "
                                "modelTopology.node and weightsManifest)");
  }
  m.generated_by = j.value("generatedBy", "");
  m.converted_by = j.value("convertedBy", "");
  if (j.contains("signature") && j["signature"].contains("inputs") &&
      !j["signature"]["inputs"].empty()) {
    m.input = j["signature"]["inputs"].begin().key();
  }
  // The shards, concatenated in the manifest's order.
  std::string bytes;
  std::vector<Json> specs;
  for (const Json& group : j["weightsManifest"]) {
    for (const Json& p : group.at("paths")) {
      const std::filesystem::path shard = json_path.parent_path() / p.get<std::string>();
      ASSIGN_OR_RETURN(std::string b, ReadFile(shard));
      bytes += b;
      m.shards.push_back(shard);
    }
    for (const Json& w : group.at("weights")) specs.push_back(w);
  }
  size_t offset = 0;
  for (const Json& w : specs) {
    const std::string name = w.at("name").get<std::string>();
    TfjsTensor t;
    for (const Json& d : w.at("shape")) t.shape.push_back(d.get<int64_t>());
    const std::string dtype = w.at("dtype").get<std::string>();
    const int64_t n = t.numel();
    std::string stored = dtype;
    double scale = 1, min = 0;
    if (w.contains("quantization")) {
      const Json& q = w["quantization"];
      stored = q.at("dtype").get<std::string>();
      scale = q.value("scale", 1.0);
      min = q.value("min", 0.0);
    }
    const size_t width = stored == "float16" || stored == "uint16"  ? 2
                         : stored == "uint8"                        ? 1
                         : stored == "float32" || stored == "int32" ? 4
                                                                    : 0;
    if (width == 0 || (dtype != "float32" && dtype != "int32")) {
      return Status::InvalidInput(what + ": tensor '" + name + "' has dtype " + dtype +
                                  " stored as " + stored +
                                  "; supported: float32 or int32, stored as float32, int32, "
                                  "float16, uint8 or uint16");
    }
    const size_t size = width * static_cast<size_t>(n);
    if (offset + size > bytes.size()) {
      return Status::Corruption(what + ": the weight files hold " + std::to_string(bytes.size()) +
                                " bytes, but tensor '" + name + "' needs bytes " +
                                std::to_string(offset) + " to " + std::to_string(offset + size));
    }
    const char* p = bytes.data() + offset;
    t.dtype = dtype;
    if (dtype == "int32") {
      t.ints.resize(n);
      for (int64_t i = 0; i < n; ++i) {
        t.ints[i] = stored == "int32"
                        ? ReadLe<int32_t>(p + 4 * i)
                        : static_cast<int32_t>(std::lround(
                              min + scale * (stored == "uint8" ? static_cast<uint8_t>(p[i])
                                                               : ReadLe<uint16_t>(p + 2 * i))));
      }
    } else {
      t.floats.resize(n);
      for (int64_t i = 0; i < n; ++i) {
        if (stored == "float32") {
          t.floats[i] = ReadLe<float>(p + 4 * i);
        } else if (stored == "float16") {
          t.floats[i] = HalfToFloat(ReadLe<uint16_t>(p + 2 * i));
        } else if (stored == "uint8") {
          t.floats[i] = static_cast<float>(min + scale * static_cast<uint8_t>(p[i]));
        } else {
          t.floats[i] = static_cast<float>(min + scale * ReadLe<uint16_t>(p + 2 * i));
        }
      }
    }
    offset += size;
    m.constants.emplace(name, std::move(t));
  }
  if (offset != bytes.size()) {
    return Status::Corruption(what + ": the manifest accounts for " + std::to_string(offset) +
                              " bytes of " + std::to_string(bytes.size()) + " in its weight files");
  }
  std::set<std::string> known;
  for (const Json& n : j["modelTopology"]["node"]) {
    TfjsNode node = ParseNode(n);
    if (node.op == "Const") {
      if (!m.constants.count(node.name)) {
        return Status::Corruption(what + ": constant node '" + node.name +
                                  "' has no tensor in the weights manifest");
      }
    } else {
      m.nodes.push_back(std::move(node));
    }
    known.insert(n.value("name", ""));
  }
  for (const TfjsNode& node : m.nodes) {
    for (const std::string& in : node.inputs) {
      const std::string base = in.substr(0, in.find(':'));
      if (!known.count(base)) {
        return Status::Corruption(what + ": node '" + node.name + "' reads '" + in +
                                  "', which is not in the graph");
      }
    }
  }
  if (m.input.empty()) {
    for (const TfjsNode& node : m.nodes) {
      if (node.op == "Placeholder") m.input = node.name;
    }
  }
  return m;
}

}  // namespace detops::ml

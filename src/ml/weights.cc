#include "ml/weights.h"

#include <unistd.h>

namespace detops::ml {
namespace fs = std::filesystem;

void WriteState(torch::serialize::OutputArchive& archive, const std::string& prefix,
                DetectorNet& net) {
  for (const auto& p : net->named_parameters()) archive.write(prefix + "p/" + p.key(), p.value());
  for (const auto& b : net->named_buffers()) {
    archive.write(prefix + "b/" + b.key(), b.value(), /*is_buffer=*/true);
  }
}

std::pair<int, int> ReadState(torch::serialize::InputArchive& archive, const std::string& prefix,
                              DetectorNet& net) {
  int loaded = 0, skipped = 0;
  torch::NoGradGuard no_grad;
  auto take = [&](const std::string& key, torch::Tensor& dst, bool buffer) {
    torch::Tensor t;
    if (!archive.try_read(key, t, buffer) || t.sizes() != dst.sizes()) {
      ++skipped;
      return;
    }
    dst.copy_(t);
    ++loaded;
  };
  for (auto& p : net->named_parameters()) take(prefix + "p/" + p.key(), p.value(), false);
  for (auto& b : net->named_buffers()) take(prefix + "b/" + b.key(), b.value(), true);
  return {loaded, skipped};
}

Json ConfigToJson(const ModelConfig& c) {
  Json j = {{"format", "detops-detector/1"},
            {"variant", c.variant},
            {"imgsz", c.imgsz},
            {"classes", c.classes}};
  if (!c.backbone.is_null()) j["backbone"] = c.backbone;
  return j;
}

Result<ModelConfig> ConfigFromJson(const Json& j) {
  try {
    ModelConfig c;
    c.variant = j.at("variant").get<std::string>();
    c.imgsz = j.at("imgsz").get<int>();
    c.classes = j.at("classes").get<std::vector<std::string>>();
    if (j.contains("backbone")) c.backbone = j["backbone"];
    const bool pretrained = c.variant != "n" && c.variant != "s";
    if (!CheckVariant(c.variant).ok() || pretrained != !c.backbone.is_null() || c.imgsz < 32 ||
        c.imgsz % 32 != 0 || c.classes.empty()) {
      Json brief = j;
      brief.erase("backbone");
      return Status::Corruption("model config is out of range: " + brief.dump());
    }
    if (pretrained) RETURN_IF_ERROR(CheckTfjsSpec(c.backbone));
    return c;
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("model config: ") + e.what());
  }
}

Status SaveArchive(torch::serialize::OutputArchive& archive, const fs::path& path) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  try {
    archive.save_to(tmp.string());
  } catch (const c10::Error& e) {
    return Status::IOError(tmp.string() + ": cannot write: " + e.what_without_backtrace());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError(path.string() + ": cannot rename into place: " + ec.message());
  return Status::Ok();
}

Result<std::unique_ptr<torch::serialize::InputArchive>> OpenArchive(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such weights file");
  auto archive = std::make_unique<torch::serialize::InputArchive>();
  try {
    archive->load_from(path.string());
  } catch (const c10::Error& e) {
    return Status::Corruption(path.string() + ": not a detops weights file or checkpoint (" +
                              e.what_without_backtrace() + ")");
  } catch (const std::exception& e) {
    return Status::Corruption(path.string() + ": unreadable weights: " + e.what());
  }
  return archive;
}

Status SaveWeights(const fs::path& path, const ModelConfig& config, DetectorNet& net) {
  torch::serialize::OutputArchive archive;
  archive.write("config", c10::IValue(ConfigToJson(config).dump()));
  WriteState(archive, "", net);
  return SaveArchive(archive, path);
}

Result<ModelConfig> ReadConfig(const fs::path& path) {
  ASSIGN_OR_RETURN(auto archive, OpenArchive(path));
  c10::IValue v;
  if (!archive->try_read("config", v) || !v.isString()) {
    return Status::Corruption(path.string() + ": weights file has no model config");
  }
  ASSIGN_OR_RETURN(Json j, ParseJson(v.toStringRef(), path.string() + " config"));
  return ConfigFromJson(j);
}

Result<std::pair<int, int>> LoadWeightsInto(const fs::path& path, DetectorNet& net) {
  ASSIGN_OR_RETURN(auto archive, OpenArchive(path));
  c10::IValue kind;
  // A checkpoint keeps the EMA weights under "ema/"; they are the ones to use.
  std::string prefix = archive->try_read("checkpoint", kind) ? "ema/" : "";
  auto counts = ReadState(*archive, prefix, net);
  if (counts.first == 0) {
    return Status::Corruption(path.string() + ": no tensor matches this model");
  }
  return counts;
}

}  // namespace detops::ml

namespace detops {

Result<double> WeightsMaxAbsDiff(const std::filesystem::path& a, const std::filesystem::path& b) {
  ASSIGN_OR_RETURN(ModelConfig ca, ml::ReadConfig(a));
  ASSIGN_OR_RETURN(ModelConfig cb, ml::ReadConfig(b));
  if (ca.variant != cb.variant || ca.classes.size() != cb.classes.size() ||
      ca.backbone != cb.backbone) {
    return Status::InvalidInput(a.string() + " and " + b.string() + " are different architectures");
  }
  ml::NetConfig nc = ml::NetConfigFor(ca);
  ml::DetectorNet na(nc), nb(nc);
  RETURN_IF_ERROR(ml::LoadWeightsInto(a, na).status());
  RETURN_IF_ERROR(ml::LoadWeightsInto(b, nb).status());
  double diff = 0;
  auto pa = na->parameters(), pb = nb->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    diff = std::max(diff, (pa[i] - pb[i]).abs().max().item<double>());
  }
  auto ba = na->buffers(), bb = nb->buffers();
  for (size_t i = 0; i < ba.size(); ++i) {
    if (ba[i].is_floating_point())
      diff = std::max(diff, (ba[i] - bb[i]).abs().max().item<double>());
  }
  return diff;
}

}  // namespace detops

#include "core/json.h"

#include <algorithm>
#include <tuple>

namespace detops {

Result<Json> ParseJson(std::string_view text, const std::string& what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return Status::InvalidInput(what + ": malformed JSON at byte " + std::to_string(e.byte) + ": " +
                                e.what());
  } catch (const Json::out_of_range& e) {  // a number beyond a double: 1e999
    return Status::InvalidInput(what + ": malformed JSON: " + e.what());
  }
}

Json ManifestToJson(const Manifest& m) {
  Json images = Json::array();
  for (const ImageEntry& e : m.images) {
    Json boxes = Json::array();
    for (const Box& b : e.boxes) {
      Json jb = {b.class_id, b.x1, b.y1, b.x2, b.y2};
      if (b.difficult) jb.push_back(1);
      boxes.push_back(std::move(jb));
    }
    images.push_back({{"blob", e.blob},
                      {"name", e.name},
                      {"split", SplitName(e.split)},
                      {"w", e.width},
                      {"h", e.height},
                      {"labelled", e.labelled},
                      {"boxes", std::move(boxes)}});
  }
  return {{"format", "detops-manifest/1"}, {"classes", m.classes}, {"images", std::move(images)}};
}

Result<Manifest> ManifestFromJson(const Json& j) {
  try {
    Manifest m;
    m.classes = j.at("classes").get<std::vector<std::string>>();
    for (const Json& ji : j.at("images")) {
      ImageEntry e;
      e.blob = ji.at("blob").get<std::string>();
      e.name = ji.at("name").get<std::string>();
      auto split = ParseSplit(ji.at("split").get<std::string>());
      if (!split) return Status::Corruption("manifest: unknown split for " + e.name);
      e.split = *split;
      e.width = ji.at("w").get<int>();
      e.height = ji.at("h").get<int>();
      e.labelled = ji.at("labelled").get<bool>();
      for (const Json& jb : ji.at("boxes")) {
        Box b;
        b.class_id = jb.at(0).get<int>();
        b.x1 = jb.at(1).get<double>();
        b.y1 = jb.at(2).get<double>();
        b.x2 = jb.at(3).get<double>();
        b.y2 = jb.at(4).get<double>();
        b.difficult = jb.size() > 5 && jb.at(5).get<int>() != 0;
        e.boxes.push_back(b);
      }
      m.images.push_back(std::move(e));
    }
    return m;
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("manifest: ") + e.what());
  }
}

void Canonicalize(Manifest& m) {
  for (ImageEntry& e : m.images) {
    for (Box& b : e.boxes) b = QuantizeBox(b);
  }
  std::sort(m.images.begin(), m.images.end(), [](const ImageEntry& a, const ImageEntry& b) {
    return std::tie(a.split, a.name, a.blob) < std::tie(b.split, b.name, b.blob);
  });
}

std::string CanonicalManifestText(const Manifest& m) { return ManifestToJson(m).dump(); }

Json IssuesToJson(const std::vector<SourceIssue>& issues) {
  Json out = Json::array();
  for (const SourceIssue& i : issues) {
    out.push_back({{"kind", i.kind}, {"file", i.file}, {"line", i.line}, {"message", i.message}});
  }
  return out;
}

std::vector<SourceIssue> IssuesFromJson(const Json& j) {
  std::vector<SourceIssue> out;
  if (!j.is_array()) return out;
  for (const Json& ji : j) {
    out.push_back(
        {ji.value("kind", ""), ji.value("file", ""), ji.value("line", 0), ji.value("message", "")});
  }
  return out;
}

}  // namespace detops

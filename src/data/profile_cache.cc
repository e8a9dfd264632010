// ProfileManifest: image profiles kept by content address, so an image is
// decoded once however many versions and validations see it.

#include "data/profile_cache.h"

#include <optional>
#include <unordered_map>

namespace detops {
namespace {

std::string ThumbToHex(const std::vector<uint8_t>& thumb) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(thumb.size() * 2);
  for (uint8_t v : thumb) {
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

// False when `hex` is not a thumbnail of a decoded image; a profile of an
// image that does not decode has none.
bool ThumbFromHex(const std::string& hex, ImageProfile& p) {
  if (hex.empty()) return !p.decodes;
  if (hex.size() != 2u * kThumbSide * kThumbSide) return false;
  auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  p.thumb.resize(hex.size() / 2);
  for (size_t i = 0; i < p.thumb.size(); ++i) {
    p.thumb[i] = static_cast<uint8_t>(digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]));
  }
  return true;
}

Json ProfileToJson(const ImageProfile& p) {
  return {{"decodes", p.decodes},
          {"error", p.error},
          {"format", p.format},
          {"w", p.width},
          {"h", p.height},
          {"channels", p.channels},
          {"bits", p.bit_depth},
          {"brightness", p.brightness},
          {"contrast", p.contrast},
          {"sharpness", p.sharpness},
          {"b", p.mean_b},
          {"g", p.mean_g},
          {"r", p.mean_r},
          {"dhash", std::to_string(p.dhash)},
          {"thumb", ThumbToHex(p.thumb)}};
}

std::optional<ImageProfile> ProfileFromJson(const Json& j) {
  try {
    ImageProfile p;
    p.decodes = j.at("decodes");
    p.error = j.at("error");
    p.format = j.at("format");
    p.width = j.at("w");
    p.height = j.at("h");
    p.channels = j.at("channels");
    p.bit_depth = j.at("bits");
    p.brightness = j.at("brightness");
    p.contrast = j.at("contrast");
    p.sharpness = j.at("sharpness");
    p.mean_b = j.at("b");
    p.mean_g = j.at("g");
    p.mean_r = j.at("r");
    p.dhash = std::stoull(j.at("dhash").get<std::string>());
    // Profiles cached before thumbnails existed lack one: profile again.
    if (!ThumbFromHex(j.at("thumb").get<std::string>(), p)) return std::nullopt;
    return p;
  } catch (const std::exception&) {
    return std::nullopt;  // a stale cache row: profile again
  }
}

}  // namespace

Result<std::vector<ImageProfile>> ProfileManifest(
    Workspace& ws, const Manifest& manifest, int threads,
    const std::function<void(size_t done, size_t total)>& progress) {
  std::vector<ImageProfile> profiles(manifest.images.size());
  std::vector<size_t> missing;
  {
    ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT sha, profile_json FROM image_profiles"));
    std::unordered_map<std::string, ImageProfile> cached;
    for (const SqlRow& r : rows) {
      auto j = ParseJson(r.Text(1), "profile");
      if (!j.ok()) continue;
      if (auto p = ProfileFromJson(*j)) cached.emplace(r.Text(0), *p);
    }
    for (size_t i = 0; i < manifest.images.size(); ++i) {
      auto it = cached.find(manifest.images[i].blob);
      if (it != cached.end()) {
        profiles[i] = it->second;
      } else {
        missing.push_back(i);
      }
    }
  }
  std::vector<std::filesystem::path> paths;
  for (size_t i : missing) paths.push_back(ws.blobs().PathOf(manifest.images[i].blob));
  std::vector<ImageProfile> fresh = ProfileImageFiles(paths, threads, progress);
  for (size_t k = 0; k < missing.size(); ++k) profiles[missing[k]] = fresh[k];
  if (missing.empty()) return profiles;
  RETURN_IF_ERROR(ws.db().InTransaction([&]() -> Status {
    for (size_t k = 0; k < missing.size(); ++k) {
      RETURN_IF_ERROR(ws.db().Exec(
          "INSERT INTO image_profiles (sha, profile_json) VALUES (?, ?) ON CONFLICT (sha) DO "
          "UPDATE SET profile_json = excluded.profile_json",
          {manifest.images[missing[k]].blob, ProfileToJson(fresh[k]).dump()}));
    }
    return Status::Ok();
  }));
  return profiles;
}

}  // namespace detops

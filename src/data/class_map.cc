// Class maps: parsing "a=b,c=b" and drop lists, and renumbering boxes.

#include "data/class_map.h"

#include <algorithm>
#include <map>
#include <set>

namespace detops {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitCommas(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    out.push_back(Trim(text.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ParseClassRenames(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  for (std::string_view entry : SplitCommas(text)) {
    size_t eq = entry.find('=');
    std::string where = "class map '" + std::string(text) + "': entry '" + std::string(entry) + "'";
    if (eq == std::string_view::npos) {
      return Status::InvalidInput(where + " is not FROM=TO (e.g. cizik=scratch)");
    }
    std::string from(Trim(entry.substr(0, eq))), to(Trim(entry.substr(eq + 1)));
    if (from.empty() || to.empty()) {
      return Status::InvalidInput(where + " has an empty class name");
    }
    if (!seen.insert(from).second) {
      return Status::InvalidInput(where + ": class '" + from + "' is mapped twice");
    }
    out.emplace_back(std::move(from), std::move(to));
  }
  return out;
}

Result<std::vector<std::string>> ParseClassList(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view name : SplitCommas(text)) {
    if (name.empty()) {
      return Status::InvalidInput("class list '" + std::string(text) +
                                  "': empty class name (expected c1,c2)");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.emplace_back(name);
  }
  return out;
}

Result<ClassMap> ParseClassMap(std::string_view renames, std::string_view drops) {
  ClassMap map;
  if (!Trim(renames).empty()) {
    ASSIGN_OR_RETURN(map.rename, ParseClassRenames(renames));
  }
  if (!Trim(drops).empty()) {
    ASSIGN_OR_RETURN(map.drop, ParseClassList(drops));
  }
  for (const auto& [from, to] : map.rename) {
    if (std::find(map.drop.begin(), map.drop.end(), from) != map.drop.end()) {
      return Status::InvalidInput("class '" + from +
                                  "' is both mapped and dropped; name it in one of the two");
    }
  }
  return map;
}

std::string JoinClasses(const std::vector<std::string>& classes) {
  std::string out;
  for (const std::string& c : classes) out += (out.empty() ? "" : ", ") + c;
  return out.empty() ? "none" : out;
}

Result<ClassMapCounts> ApplyClassMap(const ClassMap& map, const std::string& what,
                                     Manifest& manifest, BoxOrigins* origins) {
  const std::vector<std::string>& old = manifest.classes;
  auto known = [&](const std::string& name, const char* role) -> Status {
    if (std::find(old.begin(), old.end(), name) != old.end()) return Status::Ok();
    return Status::InvalidInput(std::string(role) + " class '" + name + "' is not a class of " +
                                what + " (its classes: " + JoinClasses(old) + ")");
  };
  std::map<std::string, std::string> target;
  for (const auto& [from, to] : map.rename) {
    RETURN_IF_ERROR(known(from, "mapped"));
    target[from] = to;
  }
  std::set<std::string> dropped;
  for (const std::string& d : map.drop) {
    RETURN_IF_ERROR(known(d, "dropped"));
    dropped.insert(d);
  }
  ClassMapCounts counts;
  counts.classes_before = static_cast<int>(old.size());
  std::vector<std::string> classes;
  std::vector<int> new_id(old.size(), -1);  // -1: dropped
  std::vector<bool> renamed(old.size(), false);
  for (size_t i = 0; i < old.size(); ++i) {
    if (dropped.count(old[i])) continue;
    auto t = target.find(old[i]);
    std::string name = t == target.end() ? old[i] : t->second;
    renamed[i] = name != old[i];
    auto at = std::find(classes.begin(), classes.end(), name);
    new_id[i] = static_cast<int>(at - classes.begin());
    if (at == classes.end()) classes.push_back(name);
  }
  const int old_n = static_cast<int>(old.size()), new_n = static_cast<int>(classes.size());
  for (size_t i = 0; i < manifest.images.size(); ++i) {
    ImageEntry& e = manifest.images[i];
    ImageOrigin* o =
        origins && origins->images.size() == manifest.images.size() ? &origins->images[i] : nullptr;
    std::vector<Box> kept;
    std::vector<int64_t> kept_origins;
    for (size_t k = 0; k < e.boxes.size(); ++k) {
      Box b = e.boxes[k];
      if (b.class_id >= 0 && b.class_id < old_n) {
        int id = new_id[static_cast<size_t>(b.class_id)];
        if (id < 0) {
          ++counts.boxes_dropped;
          continue;
        }
        counts.boxes_renamed += renamed[static_cast<size_t>(b.class_id)] ? 1 : 0;
        b.class_id = id;
      } else if (b.class_id >= old_n) {
        b.class_id = b.class_id - old_n + new_n;  // stays unknown
      }
      kept.push_back(b);
      if (o && k < o->boxes.size()) kept_origins.push_back(o->boxes[k]);
    }
    e.boxes = std::move(kept);
    if (o) o->boxes = std::move(kept_origins);
  }
  manifest.classes = std::move(classes);
  counts.classes_after = new_n;
  return counts;
}

}  // namespace detops

// The derive operations on a Working set: leakage fixing, re-splitting,
// dropping flagged images, stratified sampling and merging.

#include "data/derive_ops.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

#include "data/validate_internal.h"

namespace detops::derive_internal {
namespace {

// Held-out first: the order in which ties are broken.
constexpr std::array<Split, 3> kTiePriority = {Split::kTest, Split::kVal, Split::kTrain};

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seeded order key of an image by its content (blob), then its name.
uint64_t Key(const ImageEntry& e, uint64_t seed) {
  return Mix(seed ^ Fnv1a(e.blob + "/" + e.name));
}

std::string FileOf(const ImageEntry& e) { return std::string(SplitName(e.split)) + "/" + e.name; }

// Groups of copies: per group, its member indices ascending; groups ordered
// by their first member.
std::vector<std::vector<size_t>> Groups(const Working& w, const CopyRule& rule) {
  std::vector<size_t> root = validate_internal::DuplicateComponents(
      w.manifest, w.profiles, rule.max_hamming, rule.min_correlation);
  std::map<size_t, std::vector<size_t>> by_root;
  for (size_t i = 0; i < root.size(); ++i) by_root[root[i]].push_back(i);
  std::vector<std::vector<size_t>> out;
  for (auto& [r, members] : by_root) out.push_back(std::move(members));
  return out;
}

int SplitIndex(Split s) { return static_cast<int>(s); }

}  // namespace

CopyRule CopyRuleOf(const Suite& suite) {
  CopyRule rule;
  for (const ExpectationSpec& e : suite.expectations) {
    if (e.type != "no_split_leakage") continue;
    rule.max_hamming = static_cast<int>(e.params.at("max_hamming"));
    rule.min_correlation = e.params.at("min_correlation");
  }
  return rule;
}

void RemoveImages(Working& w, const std::vector<bool>& drop) {
  Working out;
  out.manifest.classes = w.manifest.classes;
  for (size_t i = 0; i < w.manifest.images.size(); ++i) {
    if (drop[i]) continue;
    out.manifest.images.push_back(std::move(w.manifest.images[i]));
    out.profiles.push_back(std::move(w.profiles[i]));
    out.source_file.push_back(std::move(w.source_file[i]));
  }
  w = std::move(out);
}

void CanonicalOrder(Working& w) {
  std::vector<size_t> order(w.manifest.images.size());
  std::iota(order.begin(), order.end(), 0);
  const auto& im = w.manifest.images;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(im[a].split, im[a].name, im[a].blob) <
           std::tie(im[b].split, im[b].name, im[b].blob);
  });
  Working out;
  out.manifest.classes = w.manifest.classes;
  for (size_t i : order) {
    out.manifest.images.push_back(std::move(w.manifest.images[i]));
    out.profiles.push_back(std::move(w.profiles[i]));
    out.source_file.push_back(std::move(w.source_file[i]));
  }
  w = std::move(out);
}

std::pair<int, int> MakeNamesUnique(Working& w) {
  auto& images = w.manifest.images;
  // Who keeps a contested name: an image still where it was in the source,
  // then the first in order (the version's own before merged ones).
  std::vector<size_t> order(images.size());
  std::iota(order.begin(), order.end(), 0);
  auto unmoved = [&](size_t i) { return w.source_file[i] == FileOf(images[i]); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::make_tuple(images[a].split, images[a].name, !unmoved(a)) <
           std::make_tuple(images[b].split, images[b].name, !unmoved(b));
  });
  std::set<std::pair<Split, std::string>> taken;
  for (const ImageEntry& e : images) taken.insert({e.split, e.name});
  std::map<std::pair<Split, std::string>, std::set<std::string>> blobs;  // by original name
  std::vector<bool> drop(images.size(), false);
  int renamed = 0, removed = 0;
  for (size_t i : order) {
    ImageEntry& e = images[i];
    auto& seen = blobs[{e.split, e.name}];
    if (seen.empty()) {
      seen.insert(e.blob);
      continue;
    }
    if (!seen.insert(e.blob).second) {  // the same photo under the same name
      drop[i] = true;
      ++removed;
      continue;
    }
    const std::filesystem::path n(e.name);
    std::string base = (n.parent_path() / n.stem()).generic_string();
    std::string name = base + "-" + e.blob.substr(0, 8) + n.extension().string();
    for (int k = 2; taken.count({e.split, name}); ++k) {
      name = base + "-" + e.blob.substr(0, 8) + "-" + std::to_string(k) + n.extension().string();
    }
    taken.insert({e.split, name});
    e.name = name;
    ++renamed;
  }
  RemoveImages(w, drop);
  CanonicalOrder(w);
  return {renamed, removed};
}

Counts FixLeakage(Working& w, LeakagePolicy policy, const CopyRule& rule) {
  auto& images = w.manifest.images;
  std::vector<bool> drop(images.size(), false);
  int straddling = 0, changed = 0;
  for (const auto& members : Groups(w, rule)) {
    std::array<int, 3> count{};
    for (size_t i : members) ++count[SplitIndex(images[i].split)];
    if (std::count_if(count.begin(), count.end(), [](int c) { return c > 0; }) < 2) continue;
    ++straddling;
    Split keep = kTiePriority[0];
    for (Split s : kTiePriority) {
      if (count[SplitIndex(s)] > count[SplitIndex(keep)]) keep = s;
    }
    for (size_t i : members) {
      if (images[i].split == keep) continue;
      ++changed;
      if (policy == LeakagePolicy::kDrop) {
        drop[i] = true;
      } else {
        images[i].split = keep;
      }
    }
  }
  RemoveImages(w, drop);
  auto [renamed, removed] = MakeNamesUnique(w);
  Counts c{{"groups", straddling}};
  c[policy == LeakagePolicy::kDrop ? "dropped" : "moved"] = changed;
  if (renamed) c["renamed"] = renamed;
  if (removed) c["identical_removed"] = removed;
  return c;
}

Counts Resplit(Working& w, double train, double val, double test, uint64_t seed,
               const CopyRule& rule) {
  auto& images = w.manifest.images;
  std::vector<std::vector<size_t>> groups = Groups(w, rule);
  // Seeded content order: the smallest member key stands for the group.
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t g = 0; g < groups.size(); ++g) {
    uint64_t k = ~uint64_t{0};
    for (size_t i : groups[g]) k = std::min(k, Key(images[i], seed));
    order.push_back({k, g});
  }
  std::sort(order.begin(), order.end());
  const std::array<double, 3> ratio = {train, val, test};
  const double total = train + val + test;
  std::array<double, 3> target{};
  for (int s = 0; s < 3; ++s) target[s] = ratio[s] / total * static_cast<double>(images.size());
  std::array<int, 3> assigned{};
  int moved = 0;
  for (auto [key, g] : order) {
    int best = -1;
    for (int s = 0; s < 3; ++s) {  // train, val, test: the first of equal deficits
      if (ratio[s] <= 0) continue;
      if (best < 0 || target[s] - assigned[s] > target[best] - assigned[best]) best = s;
    }
    for (size_t i : groups[g]) {
      Split to = static_cast<Split>(best);
      if (images[i].split != to) ++moved;
      images[i].split = to;
    }
    assigned[best] += static_cast<int>(groups[g].size());
  }
  auto [renamed, removed] = MakeNamesUnique(w);
  Counts c{{"groups", static_cast<int>(groups.size())}, {"moved", moved}};
  for (int s = 0; s < 3; ++s) c[SplitName(static_cast<Split>(s))] = assigned[s];
  if (renamed) c["renamed"] = renamed;
  if (removed) c["identical_removed"] = removed;
  return c;
}

Result<Counts> DropFinding(Working& w, const ValidationReport& report, const std::string& check,
                           const std::string& source_ref) {
  const ExpectationResult* result = nullptr;
  std::string checks;
  for (const ExpectationResult& r : report.results) {
    if (r.type == check) result = &r;
    checks += (checks.empty() ? "" : ", ") + r.type;
  }
  if (!result) {
    return Status::InvalidInput("--drop-finding " + check + ": the latest validation report of " +
                                source_ref + " has no result for it (it ran: " + checks + ")");
  }
  std::set<std::string> named;
  for (const Finding& f : result->findings) named.insert(f.file);
  std::vector<bool> drop(w.manifest.images.size(), false);
  std::set<std::string> matched;
  int dropped = 0;
  for (size_t i = 0; i < drop.size(); ++i) {
    if (w.source_file[i].empty() || !named.count(w.source_file[i])) continue;
    drop[i] = true;
    matched.insert(w.source_file[i]);
    ++dropped;
  }
  int not_images = 0;
  for (const Finding& f : result->findings) not_images += matched.count(f.file) ? 0 : 1;
  if (!result->findings.empty() && matched.empty()) {
    return Status::InvalidInput(
        "--drop-finding " + check + ": none of its " + std::to_string(result->findings.size()) +
        " findings in the latest report of " + source_ref + " names an image (e.g. '" +
        result->findings[0].file +
        "'); derive drops images only. Fix the source files and import again");
  }
  RemoveImages(w, drop);
  return Counts{{"dropped", dropped},
                {"findings", static_cast<int>(result->findings.size())},
                {"findings_not_images", not_images}};
}

Counts Sample(Working& w, double sample, uint64_t seed) {
  auto& images = w.manifest.images;
  std::vector<bool> drop(images.size(), false);
  int kept = 0;
  for (Split split : kAllSplits) {
    // Strata: the image's most frequent class (lowest id on a tie); -1
    // for an image without boxes.
    std::map<int, std::vector<std::pair<uint64_t, size_t>>> strata;
    size_t n = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i].split != split) continue;
      std::map<int, int> per_class;
      for (const Box& b : images[i].boxes) ++per_class[b.class_id];
      int stratum = -1, most = 0;
      for (auto [c, k] : per_class) {
        if (k <= most) continue;
        stratum = c;
        most = k;
      }
      strata[stratum].push_back({Key(images[i], seed), i});
      ++n;
    }
    if (n == 0) continue;
    size_t want = sample >= 1 ? static_cast<size_t>(sample)
                              : static_cast<size_t>(std::llround(sample * static_cast<double>(n)));
    want = std::min(want, n);
    // Largest remainder: floor quotas, then one more to the largest
    // fractions (the first stratum on a tie).
    std::vector<std::pair<double, int>> remainders;
    std::map<int, size_t> quota;
    size_t given = 0;
    for (auto& [stratum, members] : strata) {
      double exact =
          static_cast<double>(want) * static_cast<double>(members.size()) / static_cast<double>(n);
      quota[stratum] = static_cast<size_t>(exact);
      given += quota[stratum];
      remainders.push_back({-(exact - static_cast<double>(quota[stratum])), stratum});
    }
    std::stable_sort(remainders.begin(), remainders.end());
    for (size_t k = 0; given < want && k < remainders.size(); ++k, ++given) {
      ++quota[remainders[k].second];
    }
    for (auto& [stratum, members] : strata) {
      std::sort(members.begin(), members.end());
      for (size_t k = 0; k < members.size(); ++k) {
        if (k < quota[stratum]) {
          ++kept;
        } else {
          drop[members[k].second] = true;
        }
      }
    }
  }
  int dropped = static_cast<int>(std::count(drop.begin(), drop.end(), true));
  RemoveImages(w, drop);
  return {{"kept", kept}, {"dropped", dropped}};
}

Result<Counts> Merge(Working& w, Working other, const std::vector<ClassMap>& maps,
                     const std::string& w_ref, const std::string& other_ref) {
  for (const ClassMap& map : maps) {
    ClassMap applicable;
    const auto& oc = other.manifest.classes;
    auto has = [&](const std::string& c) { return std::find(oc.begin(), oc.end(), c) != oc.end(); };
    for (const auto& r : map.rename) {
      if (has(r.first)) applicable.rename.push_back(r);
    }
    for (const auto& d : map.drop) {
      if (has(d)) applicable.drop.push_back(d);
    }
    RETURN_IF_ERROR(ApplyClassMap(applicable, other_ref, other.manifest).status());
  }
  std::map<std::string, int> id_of;
  for (size_t i = 0; i < w.manifest.classes.size(); ++i) {
    id_of[w.manifest.classes[i]] = static_cast<int>(i);
  }
  std::vector<std::string> missing;
  std::vector<int> remap;
  for (const std::string& c : other.manifest.classes) {
    auto it = id_of.find(c);
    if (it == id_of.end()) missing.push_back(c);
    remap.push_back(it == id_of.end() ? -1 : it->second);
  }
  if (!missing.empty()) {
    return Status::InvalidInput(
        "--merge " + other_ref + ": its classes " + JoinClasses(missing) + " are not classes of " +
        w_ref + " (" + JoinClasses(w.manifest.classes) +
        "); map them first (--map-classes FROM=TO before --merge, or derive " + other_ref +
        " with --map-classes/--drop-classes and merge that version)");
  }
  const int other_n = static_cast<int>(remap.size());
  const int w_n = static_cast<int>(w.manifest.classes.size());
  size_t before = w.manifest.images.size();
  for (size_t i = 0; i < other.manifest.images.size(); ++i) {
    ImageEntry e = std::move(other.manifest.images[i]);
    for (Box& b : e.boxes) {
      if (b.class_id >= 0 && b.class_id < other_n) {
        b.class_id = remap[static_cast<size_t>(b.class_id)];
      } else if (b.class_id >= other_n) {
        b.class_id = b.class_id - other_n + w_n;  // stays unknown
      }
    }
    w.manifest.images.push_back(std::move(e));
    w.profiles.push_back(std::move(other.profiles[i]));
    w.source_file.push_back("");
  }
  size_t incoming = w.manifest.images.size() - before;
  auto [renamed, removed] = MakeNamesUnique(w);
  return Counts{{"added", static_cast<int>(incoming) - removed},
                {"renamed", renamed},
                {"already_present", removed}};
}

}  // namespace detops::derive_internal

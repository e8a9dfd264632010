// Duplicate expectations: exact copies (same blob), near-duplicates (close
// difference hashes) and leakage of either across splits.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <unordered_map>

#include "data/validate.h"
#include "data/validate_internal.h"

namespace detops::validate_internal {
namespace {

// Bits [begin, end) of band b when 64 bits are cut into `bands` bands.
uint64_t Band(uint64_t h, int b, int bands) {
  int begin = 64 * b / bands, end = 64 * (b + 1) / bands;
  uint64_t mask = end - begin >= 64 ? ~uint64_t{0} : (uint64_t{1} << (end - begin)) - 1;
  return (h >> begin) & mask;
}

// A candidate pair (close dhashes) is confirmed when the thumbnails agree
// too: a 64-bit dhash of plain scenes (a painted panel, an empty road)
// collides between different photos, the 16x16 thumbnail far less. Without a
// usable thumbnail (flat, or a profile made before thumbnails) the dhash
// alone decides, as before.
struct Match {
  bool confirmed = false;
  double correlation = 0;  // NaN when not measured
};

Match Confirm(const Context& ctx, size_t a, size_t b, double min_correlation) {
  double c = ThumbCorrelation((*ctx.profiles)[a], (*ctx.profiles)[b]);
  return {std::isnan(c) || c >= min_correlation, c};
}

std::string MatchText(int d, double correlation) {
  std::string out = "dhash distance " + std::to_string(d);
  if (!std::isnan(correlation)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", thumbnail correlation %.3f", correlation);
    out += buf;
  }
  return out;
}

// Examined members per group and candidate: a huge group (thousands of
// blank frames share one hash) is confirmed by its first members only.
constexpr size_t kMaxExamined = 256;

}  // namespace

HashGroups GroupNearHashes(const std::vector<size_t>& images, const std::vector<uint64_t>& hashes,
                           int max_distance) {
  HashGroups g;
  std::unordered_map<uint64_t, size_t> group_of;
  for (size_t i : images) {
    auto [it, added] = group_of.try_emplace(hashes[i], g.hash.size());
    if (added) {
      g.hash.push_back(hashes[i]);
      g.members.emplace_back();
    }
    g.members[it->second].push_back(i);
  }
  size_t n = g.hash.size();
  auto link = [&](size_t a, size_t b) {
    int d = HammingDistance(g.hash[a], g.hash[b]);
    if (d <= max_distance) g.pairs.push_back({std::min(a, b), std::max(a, b), d});
  };
  if (max_distance <= 0) return g;
  if (max_distance > 8) {
    for (size_t a = 0; a < n; ++a) {
      for (size_t b = a + 1; b < n; ++b) link(a, b);
    }
    return g;
  }
  int bands = max_distance + 1;
  std::vector<std::pair<uint64_t, size_t>> keyed(n);
  for (int b = 0; b < bands; ++b) {
    for (size_t k = 0; k < n; ++k) keyed[k] = {Band(g.hash[k], b, bands), k};
    std::sort(keyed.begin(), keyed.end());
    for (size_t lo = 0; lo < n;) {
      size_t hi = lo;
      while (hi < n && keyed[hi].first == keyed[lo].first) ++hi;
      for (size_t x = lo; x < hi; ++x) {
        for (size_t y = x + 1; y < hi; ++y) {
          size_t a = keyed[x].second, c = keyed[y].second;
          // Count each pair in the first band the two agree on only.
          bool seen = false;
          for (int e = 0; e < b && !seen; ++e) {
            seen = Band(g.hash[a], e, bands) == Band(g.hash[c], e, bands);
          }
          if (!seen) link(a, c);
        }
      }
      lo = hi;
    }
  }
  return g;
}

NearIndex::NearIndex(const Context& ctx, int max_distance) {
  const auto& images = ctx.manifest.images;
  std::vector<uint64_t> hashes(images.size(), 0);
  for (size_t i = 0; i < images.size(); ++i) {
    if (!(*ctx.profiles)[i].decodes) continue;
    decoded.push_back(i);
    hashes[i] = (*ctx.profiles)[i].dhash;
  }
  groups = GroupNearHashes(decoded, hashes, max_distance);
  group_of.assign(images.size(), 0);
  for (size_t k = 0; k < groups.hash.size(); ++k) {
    for (size_t i : groups.members[k]) group_of[i] = k;
  }
  adjacent.resize(groups.hash.size());
  for (size_t k = 0; k < groups.hash.size(); ++k) adjacent[k].push_back({k, 0});
  for (const auto& p : groups.pairs) {
    adjacent[p.a].push_back({p.b, p.distance});
    adjacent[p.b].push_back({p.a, p.distance});
  }
}

void NearIndex::ForEachMatch(const Context& ctx, size_t i, double min_correlation,
                             const std::function<bool(size_t)>& skip,
                             const std::function<void(size_t, int, double)>& fn) const {
  for (auto [group, d] : adjacent[group_of[i]]) {
    const auto& members = groups.members[group];
    for (size_t m = 0; m < members.size() && m < kMaxExamined; ++m) {
      size_t j = members[m];
      if (j == i || skip(j)) continue;
      Match match = Confirm(ctx, i, j, min_correlation);
      if (match.confirmed) fn(j, d, match.correlation);
    }
  }
}

std::vector<size_t> DuplicateComponents(const Manifest& manifest,
                                        const std::vector<ImageProfile>& profiles, int max_hamming,
                                        double min_correlation) {
  const auto& images = manifest.images;
  std::vector<size_t> parent(images.size());
  for (size_t i = 0; i < parent.size(); ++i) parent[i] = i;
  auto find = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  auto unite = [&](size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the root is the first member
  };
  std::unordered_map<std::string, size_t> first;
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].blob.empty()) continue;
    auto [it, added] = first.try_emplace(images[i].blob, i);
    if (!added) unite(it->second, i);
  }
  if (profiles.size() == images.size()) {
    static const std::vector<SourceIssue> kNoIssues;
    Context ctx{manifest, kNoIssues, &profiles, "", nullptr};
    NearIndex index(ctx, max_hamming);
    for (size_t i : index.decoded) {
      index.ForEachMatch(
          ctx, i, min_correlation, [](size_t) { return false; },
          [&](size_t j, int, double) { unite(i, j); });
    }
  }
  std::vector<size_t> out(images.size());
  for (size_t i = 0; i < images.size(); ++i) out[i] = find(i);
  return out;
}

void CheckNoExactDuplicates(const ExpectationSpec&, const Context& ctx, ExpectationResult& r) {
  std::unordered_map<std::string, size_t> first;
  std::unordered_map<std::string, size_t> copies;
  for (size_t i = 0; i < ctx.manifest.images.size(); ++i) {
    const std::string& blob = ctx.manifest.images[i].blob;
    if (blob.empty()) continue;
    auto [it, added] = first.try_emplace(blob, i);
    if (added) continue;
    ++copies[blob];
    r.findings.push_back({ctx.ImageFile(i), 0, "same bytes as " + ctx.ImageFile(it->second)});
  }
  r.observed = static_cast<double>(r.findings.size());
  r.passed = r.findings.empty();
  r.summary = std::to_string(r.findings.size()) + " images repeat the bytes of another (" +
              std::to_string(copies.size()) + " distinct files affected)";
}

void CheckNoSplitLeakage(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  const auto& images = ctx.manifest.images;
  // Exact: the first image of each blob per split.
  std::unordered_map<std::string, std::array<long, 3>> where;
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].blob.empty()) continue;
    auto [it, added] = where.try_emplace(images[i].blob, std::array<long, 3>{-1, -1, -1});
    long& slot = it->second[static_cast<int>(images[i].split)];
    if (slot < 0) slot = static_cast<long>(i);
  }
  std::vector<bool> flagged(images.size(), false);
  size_t exact = 0, near = 0;
  std::vector<std::pair<size_t, Finding>> found;  // by image index, sorted at the end
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].blob.empty()) continue;
    for (long other : where[images[i].blob]) {
      if (other < 0 || images[other].split == images[i].split) continue;
      found.push_back({i, {ctx.ImageFile(i), 0, "same bytes as " + ctx.ImageFile(other)}});
      flagged[i] = true;
      ++exact;
      break;
    }
  }
  if (ctx.profiles) {
    NearIndex index(ctx, static_cast<int>(spec.params.at("max_hamming")));
    double min_corr = spec.params.at("min_correlation");
    for (size_t i : index.decoded) {
      if (flagged[i]) continue;
      long best = -1;
      int best_d = 65;
      double best_c = 0;
      index.ForEachMatch(
          ctx, i, min_corr, [&](size_t j) { return images[j].split == images[i].split; },
          [&](size_t j, int d, double correlation) {
            // Closest dhash first; then the higher correlation, then the
            // first image in manifest order.
            bool better = d < best_d || (d == best_d && !std::isnan(correlation) &&
                                         (std::isnan(best_c) || correlation > best_c));
            if (best < 0 || better) {
              best = static_cast<long>(j);
              best_d = d;
              best_c = correlation;
            }
          });
      if (best < 0) continue;
      found.push_back(
          {i,
           {ctx.ImageFile(i), 0,
            "near-duplicate of " + ctx.ImageFile(best) + " (" + MatchText(best_d, best_c) + ")"}});
      ++near;
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& f : found) r.findings.push_back(std::move(f.second));
  r.observed = static_cast<double>(exact + near);
  r.passed = exact + near == 0;
  r.summary = std::to_string(exact) + " images share their bytes with another split";
  r.summary += ctx.profiles
                   ? ", " + std::to_string(near) +
                         " are near-duplicates (dhash <= " + Num(spec.params.at("max_hamming")) +
                         ", thumbnail correlation >= " + Num(spec.params.at("min_correlation")) +
                         ") of one"
                   : "; near-duplicates not checked: " + ctx.no_profiles_reason;
}

void CheckNearDuplicates(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r) {
  if (!ctx.profiles) {
    r.skipped = true;
    r.summary = "skipped: " + ctx.no_profiles_reason;
    return;
  }
  const auto& images = ctx.manifest.images;
  int max_d = static_cast<int>(spec.params.at("max_hamming"));
  // One image per blob: exact copies are no_exact_duplicates' business.
  std::unordered_map<std::string, size_t> seen_blob;
  std::vector<size_t> candidates;
  std::vector<uint64_t> hashes(images.size(), 0);
  for (size_t i = 0; i < images.size(); ++i) {
    if (!(*ctx.profiles)[i].decodes) continue;
    if (!images[i].blob.empty() && !seen_blob.try_emplace(images[i].blob, i).second) continue;
    candidates.push_back(i);
    hashes[i] = (*ctx.profiles)[i].dhash;
  }
  HashGroups g = GroupNearHashes(candidates, hashes, max_d);
  double min_corr = spec.params.at("min_correlation");
  size_t pairs = 0;
  // Per image: its closest other image and how many it is close to.
  std::vector<long> best(images.size(), -1);
  std::vector<int> best_d(images.size(), 65);
  std::vector<double> best_c(images.size(), 0);
  std::vector<size_t> count(images.size(), 0);
  auto note = [&](size_t i, size_t other, int d, double c) {
    ++count[i];
    if (d < best_d[i] || (d == best_d[i] && static_cast<long>(other) < best[i])) {
      best[i] = static_cast<long>(other);
      best_d[i] = d;
      best_c[i] = c;
    }
  };
  auto link = [&](size_t a, size_t b, int d, bool examine) {
    Match m = examine ? Confirm(ctx, a, b, min_corr) : Match{true, std::nan("")};
    if (!m.confirmed) return;
    ++pairs;
    note(a, b, d, m.correlation);
    note(b, a, d, m.correlation);
  };
  for (const auto& m : g.members) {
    for (size_t x = 0; x < m.size(); ++x) {
      for (size_t y = x + 1; y < m.size(); ++y) link(m[x], m[y], 0, y < kMaxExamined);
    }
  }
  for (const auto& p : g.pairs) {
    const auto& ma = g.members[p.a];
    const auto& mb = g.members[p.b];
    for (size_t x = 0; x < ma.size(); ++x) {
      for (size_t y = 0; y < mb.size(); ++y) {
        link(ma[x], mb[y], p.distance, x < kMaxExamined && y < kMaxExamined);
      }
    }
  }
  for (size_t i = 0; i < images.size(); ++i) {
    if (best[i] < 0) continue;
    std::string text = "near-duplicate of " + ctx.ImageFile(best[i]) + " (" +
                       MatchText(best_d[i], best_c[i]) + ")";
    if (count[i] > 1) text += " and " + std::to_string(count[i] - 1) + " more";
    r.findings.push_back({ctx.ImageFile(i), 0, text});
  }
  r.observed = static_cast<double>(pairs);
  r.passed = pairs == 0;
  r.summary = std::to_string(pairs) + " near-duplicate pairs (dhash <= " + std::to_string(max_d) +
              ", thumbnail correlation >= " + Num(min_corr) + ") involving " +
              std::to_string(r.findings.size()) + " of " + std::to_string(candidates.size()) +
              " distinct images";
}

}  // namespace detops::validate_internal

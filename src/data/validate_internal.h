#pragma once
// Internals of the validation suite shared by validate_*.cc; not part of the
// data module's interface.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/validate.h"

namespace detops::validate_internal {

// The validated data with absent parts replaced by empty ones.
struct Context {
  const Manifest& manifest;
  const std::vector<SourceIssue>& issues;
  // Null when there are no usable profiles; `no_profiles_reason` says why.
  const std::vector<ImageProfile>* profiles = nullptr;
  std::string no_profiles_reason;
  const BoxOrigins* origins = nullptr;  // null when unknown

  // "<split>/<name>" of manifest image i.
  std::string ImageFile(size_t i) const;
  // Displayed size of image i: from the manifest, else from a decoded
  // profile; {0, 0} when unknown.
  std::pair<int, int> ImageSize(size_t i) const;
  // Where box k of image i came from ("labels/train/a.txt:4"); empty when
  // unknown.
  std::string BoxOrigin(size_t i, size_t k) const;
};

// An expectation: reads spec.params, fills passed/summary/observed/findings
// of `r` (whose type and severity are preset, passed = true).
using CheckFn = void (*)(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r);

void CheckNoExactDuplicates(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r);
void CheckNoSplitLeakage(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r);
void CheckNearDuplicates(const ExpectationSpec& spec, const Context& ctx, ExpectationResult& r);

// Near-duplicate search over 64-bit hashes. Images with the same hash form a
// group; `pairs` links groups whose hashes differ in 1..max_distance bits.
// Pigeonhole: split into max_distance+1 bands, two hashes within the distance
// agree on at least one band, so only hashes sharing a band value are
// compared (O(n log n) plus the matching pairs). Falls back to comparing all
// distinct hashes when max_distance > 8 (bands too narrow to help).
struct HashGroups {
  std::vector<uint64_t> hash;                // per group
  std::vector<std::vector<size_t>> members;  // per group: image indices, ascending
  struct Pair {
    size_t a, b;
    int distance;
  };
  std::vector<Pair> pairs;  // a < b, each linked pair once
};
HashGroups GroupNearHashes(const std::vector<size_t>& images, const std::vector<uint64_t>& hashes,
                           int max_distance);

// The decoded images of `ctx` indexed by dhash (profiles must be set), for
// finding each image's confirmed near-duplicates: dhash within
// `max_distance` and thumbnails that agree (see no_split_leakage).
struct NearIndex {
  NearIndex(const Context& ctx, int max_distance);
  // Calls fn(j, distance, correlation) for each image j != i whose dhash is
  // within the distance of i's and whose thumbnail correlation with i's is
  // at least `min_correlation` (NaN: not measured, the dhash decides),
  // examining at most 256 members per hash; `skip(j)` images are not
  // examined.
  void ForEachMatch(const Context& ctx, size_t i, double min_correlation,
                    const std::function<bool(size_t)>& skip,
                    const std::function<void(size_t, int, double)>& fn) const;

  std::vector<size_t> decoded;  // image indices, ascending
  HashGroups groups;
  std::vector<size_t> group_of;                               // per image
  std::vector<std::vector<std::pair<size_t, int>>> adjacent;  // per group: itself first
};

// Groups of copies: images linked by the same blob or by a confirmed
// near-duplicate match (NearIndex) are one group, transitively. Returns per
// image the index of its group's first image. Without one profile per
// image, only blobs link.
std::vector<size_t> DuplicateComponents(const Manifest& manifest,
                                        const std::vector<ImageProfile>& profiles, int max_hamming,
                                        double min_correlation);

// Compact number for summaries: 3, 0.25, 166.7.
std::string Num(double v);
// "12.5%".
std::string Percent(double fraction);

}  // namespace detops::validate_internal

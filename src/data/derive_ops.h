#pragma once
// The operations of `data derive` on a version held in memory. Internal to
// the data module; pure functions over a Working set (derive.cc loads and
// records). Each returns what it changed, by name, for the derivation record.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/derive.h"
#include "data/image_profile.h"

namespace detops::derive_internal {

// A version being derived: the manifest, and per image its profile and its
// file ("<split>/<name>") in the source version (empty for merged images),
// by which the source's validation findings are matched.
struct Working {
  Manifest manifest;
  std::vector<ImageProfile> profiles;
  std::vector<std::string> source_file;
};

using Counts = std::map<std::string, int>;

// What makes two images copies: the no_split_leakage parameters.
struct CopyRule {
  int max_hamming = 8;
  double min_correlation = 0.95;
};
// The rule of `suite`'s no_split_leakage expectation (its defaults when the
// suite lacks it).
CopyRule CopyRuleOf(const Suite& suite);

// Puts every group of copies in one split: the split holding most of its
// members; on a tie, the held-out one (test, then val, then train), so a
// test set never loses a photo to a tie. kMove moves the others there,
// kDrop drops them. Counts: groups (straddling ones), moved or dropped.
Counts FixLeakage(Working& w, LeakagePolicy policy, const CopyRule& rule);

// New splits by ratio, one split per group of copies: groups in a seeded
// order (by content, so the same images and seed give the same splits
// whatever their order), each to the split furthest below its target.
// A split with ratio 0 gets nothing. Counts: groups, moved, and images per
// split.
Counts Resplit(Working& w, double train, double val, double test, uint64_t seed,
               const CopyRule& rule);

// Drops the images the `check` result of `report` names. InvalidInput when
// the report has no such result, or when its findings name no image of the
// source version (`source_ref`). Counts: dropped, findings, findings_not_images.
Result<Counts> DropFinding(Working& w, const ValidationReport& report, const std::string& check,
                           const std::string& source_ref);

// Keeps `sample` images per split (>= 1) or that fraction (< 1), chosen by a
// seeded content order within strata of the image's most frequent class
// (background images are one stratum), shared out by largest remainder.
// Counts: kept, dropped.
Counts Sample(Working& w, double sample, uint64_t seed);

// Adds `other`'s images. `maps` (the class maps applied to `w` before)
// apply to `other` first, in order, each entry naming a class `other` has;
// then every class of `other` must be one of `w`'s (ids are matched by
// name): InvalidInput naming the classes that are not, else. Images named
// like one of `w`'s in the same split are renamed NAME-<sha8> unless they
// are the same photo (then `w`'s is kept). Counts: added, renamed,
// already_present.
Result<Counts> Merge(Working& w, Working other, const std::vector<ClassMap>& maps,
                     const std::string& w_ref, const std::string& other_ref);

// Removes images i where drop[i]; keeps the parallel vectors aligned.
void RemoveImages(Working& w, const std::vector<bool>& drop);

// After moves and merges: an image named like another in its split is
// renamed NAME-<sha8> (another photo) or removed (the same photo twice);
// the name stays with an image that has not moved from its source place,
// else with the first in order. Returns how many were renamed and removed.
std::pair<int, int> MakeNamesUnique(Working& w);

// Sorts the manifest canonically, the parallel vectors with it.
void CanonicalOrder(Working& w);

}  // namespace detops::derive_internal

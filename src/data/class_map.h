#pragma once
// Class renames, merges and drops, applied where data comes in (import) or
// is derived (derive). Plain data and pure functions; thread-compatible.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "data/origins.h"

namespace detops {

struct ClassMap {
  // from -> to, in the order given. Two sources with one target merge them;
  // a target may be an existing class (merged into it) or a new name.
  std::vector<std::pair<std::string, std::string>> rename;
  std::vector<std::string> drop;  // classes whose boxes are removed
  bool empty() const { return rename.empty() && drop.empty(); }
};

// Parses "cizik=scratch,gocuk=dent,a=x,b=x" (spaces around names ignored).
// InvalidInput naming the entry: not FROM=TO, an empty name, a class mapped
// twice.
Result<std::vector<std::pair<std::string, std::string>>> ParseClassRenames(std::string_view text);
// Parses "c1,c2"; InvalidInput for an empty name.
Result<std::vector<std::string>> ParseClassList(std::string_view text);
// Both, checked together: a class may not be both mapped and dropped.
Result<ClassMap> ParseClassMap(std::string_view renames, std::string_view drops);

struct ClassMapCounts {
  int boxes_renamed = 0;  // boxes whose class name changed
  int boxes_dropped = 0;
  int classes_before = 0, classes_after = 0;
};

// Applies `map` to `manifest`: the class list becomes the old one in order
// with dropped classes removed and each renamed class replaced by its target
// (first occurrence kept, so merged classes take the place of the first);
// box ids are renumbered, boxes of dropped classes removed (their images
// stay, labelled). A box with an id outside the class list keeps an id
// outside the new one. `origins`, when given and per image, loses the
// entries of removed boxes. InvalidInput when a class on the left of a
// rename or in the drop list is not one of the manifest's, naming it,
// `what` (e.g. "cars@3") and the classes it has.
Result<ClassMapCounts> ApplyClassMap(const ClassMap& map, const std::string& what,
                                     Manifest& manifest, BoxOrigins* origins = nullptr);

// "a, b, c" (or "none").
std::string JoinClasses(const std::vector<std::string>& classes);

}  // namespace detops

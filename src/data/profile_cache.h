#pragma once
// Image profiles of a manifest, cached in the workspace by content address
// (table image_profiles). Internal to the data module: validation and
// derive read the same profiles.

#include <functional>
#include <vector>

#include "data/image_profile.h"
#include "store/store.h"

namespace detops {

// One profile per manifest image, same order: from the cache, or profiled
// now with `threads` threads (progress over those) and then cached. Errors:
// the database's; an unreadable image is a profile with decodes=false.
Result<std::vector<ImageProfile>> ProfileManifest(
    Workspace& ws, const Manifest& manifest, int threads,
    const std::function<void(size_t done, size_t total)>& progress);

}  // namespace detops

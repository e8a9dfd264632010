#pragma once
// Shared by the runner's files. Internal to orchestrate.

#include <cstdint>

namespace detops {

// Wall-clock milliseconds since the epoch.
int64_t NowMillis();

}  // namespace detops

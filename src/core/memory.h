#pragma once
// What this process holds in memory, and giving back what it only needed
// while starting.

#include <cstdint>

#include "core/status.h"

namespace detops {

struct MemoryUsage {
  int64_t resident_bytes = 0;  // VmRSS
  int64_t anon_bytes = 0;      // RssAnon: heap, stacks, written library data
  int64_t file_bytes = 0;      // RssFile: mapped pages of files (library code)
};

// Reads /proc/self/status.
Result<MemoryUsage> ReadMemoryUsage();

struct ReleasedPages {
  int mappings = 0;   // mappings whose pages were released
  int64_t bytes = 0;  // resident bytes they held before
};

// Unmaps the resident pages of read-only file mappings that hold no private
// (written) page: the code and constants of the ~290 shared libraries that
// Debian's LibTorch loads, most of which only ran while they initialized.
// The pages stay in the kernel's page cache; a later use faults them back
// in (a minor fault, no disk read while they are cached). Writable mappings
// and any mapping with a private copy of a page are left alone, so no
// written data is ever dropped. Call it after start-up and warm-up, once
// the working set is known; what the hot path touches comes back at once.
Result<ReleasedPages> ReleaseColdMappedPages();

}  // namespace detops

#include "core/memory.h"

#include <sys/mman.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace detops {
namespace {

struct Mapping {
  uintptr_t start = 0, end = 0;
  std::string perms, path;
  int64_t rss_kb = 0, anonymous_kb = 0, locked_kb = 0;
};

// /proc/self/smaps: a header line per mapping ("start-end perms offset dev
// inode path"), then "Key: value kB" lines.
std::vector<Mapping> ReadSmaps(std::istream& in) {
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    unsigned long long a = 0, b = 0;
    char perms[8] = {};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s %n", &a, &b, perms, &consumed) >= 3 &&
        line.find(':') > line.find(' ')) {
      Mapping m;
      m.start = static_cast<uintptr_t>(a);
      m.end = static_cast<uintptr_t>(b);
      m.perms = perms;
      if (consumed > 0 && static_cast<size_t>(consumed) <= line.size())
        m.path = line.substr(consumed);
      out.push_back(std::move(m));
      continue;
    }
    if (out.empty()) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    int64_t kb = std::atoll(line.c_str() + colon + 1);
    Mapping& m = out.back();
    if (key == "Rss") m.rss_kb = kb;
    if (key == "Anonymous") m.anonymous_kb = kb;
    if (key == "Locked") m.locked_kb = kb;
  }
  return out;
}

}  // namespace

Result<MemoryUsage> ReadMemoryUsage() {
  std::ifstream in("/proc/self/status");
  if (!in) return Status::Unavailable("/proc/self/status: cannot read (not Linux?)");
  MemoryUsage u;
  std::string key;
  while (in >> key) {
    int64_t kb = 0;
    if (key == "VmRSS:" && in >> kb) u.resident_bytes = kb * 1024;
    if (key == "RssAnon:" && in >> kb) u.anon_bytes = kb * 1024;
    if (key == "RssFile:" && in >> kb) u.file_bytes = kb * 1024;
    in.ignore(1 << 12, '\n');
  }
  return u;
}

Result<ReleasedPages> ReleaseColdMappedPages() {
  std::ifstream in("/proc/self/smaps");
  if (!in) return Status::Unavailable("/proc/self/smaps: cannot read (not Linux?)");
  std::vector<Mapping> maps = ReadSmaps(in);
  ReleasedPages r;
  for (const Mapping& m : maps) {
    // Only files' read-only pages with no private copy: dropping them loses
    // nothing, the file (in the page cache) has the same bytes.
    const bool read_only = m.perms.size() >= 4 && m.perms[1] == '-' && m.perms[3] == 'p';
    // Regular files only: device mappings (/dev/…, a GPU driver's) are not
    // backed by the page cache; deleted files (memfd, a library replaced on
    // disk) are left alone to be safe.
    const bool file = !m.path.empty() && m.path[0] == '/' && m.path.rfind("/dev/", 0) != 0 &&
                      m.path.find(" (deleted)") == std::string::npos;
    if (!read_only || !file || m.rss_kb == 0) continue;
    // A page the process wrote is a private anonymous copy ("Anonymous");
    // "Private_Dirty" also counts file pages not yet written back to disk,
    // which the page cache keeps.
    if (m.anonymous_kb != 0 || m.locked_kb != 0) continue;
    if (::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) != 0) continue;
    ++r.mappings;
    r.bytes += m.rss_kb * 1024;
  }
  return r;
}

}  // namespace detops

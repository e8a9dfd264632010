#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "data/source.h"

namespace detops {
namespace fs = std::filesystem;

std::string RelativeName(const fs::path& p, const fs::path& root) {
  return p.lexically_relative(root).generic_string();
}

std::vector<fs::path> ListImages(const fs::path& dir, const fs::path& root,
                                 std::vector<SourceIssue>& issues) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  auto it =
      fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (!IsImageExtension(p)) continue;
    // is_symlink() and is_regular_file() answer from the directory entry's
    // cached type (no syscall for plain files; symlink_status() would stat).
    if (it->is_symlink(ec) && !IsInside(root, p)) {
      issues.push_back({"symlink_outside", RelativeName(p, root), 0,
                        "symlink points outside the source folder; not imported"});
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool ParseNumber(std::string_view s, double& out) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

}  // namespace detops

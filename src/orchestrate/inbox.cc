#include "orchestrate/inbox.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <regex>
#include <set>
#include <utility>

#include "core/names.h"
#include "store/store.h"

namespace detops {
namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string rel;   // relative to the folder, '/'-separated
  char kind;         // 'f' file, 'd' folder, 'l' symlink, 'o' other
  int64_t size = 0;  // files: bytes; symlinks: the target's length
  int64_t mtime_ns = 0;
  std::string target;  // symlinks
};

// Walks `dir` depth-first without following symlinks. Entries that vanish or
// cannot be read while the walk runs are left out: they are the folder
// changing, which the next fingerprint sees.
void Walk(const fs::path& dir, const std::string& prefix, std::vector<Entry>& out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return;
    const fs::path path = it->path();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    Entry e;
    e.rel = prefix + path.filename().string();
    e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
      e.kind = 'd';
      e.mtime_ns = 0;  // a folder's mtime only repeats its entries' names
      out.push_back(e);
      Walk(path, e.rel + "/", out);
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      e.kind = 'f';
      e.size = st.st_size;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = 'l';
      e.target = fs::read_symlink(path, ec).string();
      e.size = static_cast<int64_t>(e.target.size());
    } else {
      e.kind = 'o';
    }
    out.push_back(std::move(e));
  }
}

// rename(2) that fails with EEXIST instead of replacing an empty folder.
int RenameNoReplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  // The file system cannot refuse to replace: check, then rename.
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return std::rename(from.c_str(), to.c_str());
}

// Moves `from` into `dir` as `name`, or `name-2`, `name-3`, ... when taken.
// NotFound when `from` is gone (another watcher took it).
Result<fs::path> MoveInto(const fs::path& from, const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError(dir.string() + ": cannot create: " + ec.message());
  for (int n = 1; n <= 1000; ++n) {
    const fs::path to = dir / (n == 1 ? name : name + "-" + std::to_string(n));
    if (RenameNoReplace(from, to) == 0) return to;
    const int err = errno;
    if (err == EEXIST || err == ENOTEMPTY) continue;
    const std::string why = from.string() + " -> " + to.string() + ": " + std::strerror(err);
    if (err == ENOENT) return Status::NotFound(why);
    return Status::IOError(why);
  }
  return Status::IOError(dir.string() + ": no free name for " + name);
}

// "20260102T030405Z": the claim's UTC stamp.
std::string UtcStamp() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// The dataset of a claimed folder "NAME-<stamp>[-N]".
std::string DatasetOfClaim(const std::string& folder_name) {
  static const std::regex kClaim(R"((.+)-\d{8}T\d{6}Z(-\d+)?)");
  std::smatch m;
  if (std::regex_match(folder_name, m, kClaim)) return m[1].str();
  return folder_name;
}

bool IsRegularFile(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Result<FolderFingerprint> FingerprintFolder(const fs::path& folder) {
  struct stat st {};
  if (::lstat(folder.c_str(), &st) != 0) {
    const int err = errno;
    const std::string why = folder.string() + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(why) : Status::IOError(why);
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidInput(folder.string() + ": not a folder");
  std::error_code ec;
  fs::directory_iterator probe(folder, ec);
  if (ec) {
    const std::string why = folder.string() + ": cannot list: " + ec.message();
    // Gone between the two calls (another watcher took it).
    if (ec == std::errc::no_such_file_or_directory) return Status::NotFound(why);
    return Status::IOError(why);
  }

  std::vector<Entry> entries;
  Walk(folder, "", entries);
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.rel < b.rel; });
  FolderFingerprint fp;
  Sha256 sha;
  for (const Entry& e : entries) {
    // NUL never occurs in a name, so the fields cannot run into each other.
    const std::string line = std::string(1, e.kind) + '\0' + e.rel + '\0' + std::to_string(e.size) +
                             '\0' + std::to_string(e.mtime_ns) + '\0' + e.target + '\0';
    sha.Update(line);
    if (e.kind != 'd') {
      ++fp.files;
      fp.bytes += e.kind == 'f' ? e.size : 0;
    }
  }
  fp.digest = sha.HexDigest();
  return fp;
}

InboxWatcher::InboxWatcher(InboxOptions options) : options_(std::move(options)) {}

Result<std::vector<InboxBatch>> InboxWatcher::Poll(int64_t now_ms) {
  const fs::path& root = options_.root;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IOError(root.string() + ": cannot create the inbox: " + ec.message());
  fs::directory_iterator it(root, ec);
  if (ec) return Status::IOError(root.string() + ": cannot list the inbox: " + ec.message());

  auto report = [&](const std::string& name, const std::string& why) {
    if (reported_[name]) return;
    reported_[name] = true;
    rejected.push_back(name + ": " + why);
  };
  const int64_t quiet_ms = std::llround(options_.quiet_seconds * 1000);
  std::set<std::string> present;
  std::vector<InboxBatch> batches;
  // Errors past this point concern one folder: they are reported and the
  // scan goes on, so that batches already claimed are always returned.
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path folder = it->path();
    const std::string name = folder.filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!options_.datasets.empty() && !options_.datasets.count(name)) continue;
    struct stat st {};
    if (::lstat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    present.insert(name);
    if (Status valid = CheckName("dataset", name); !valid.ok()) {
      report(name, valid.message() + "; left in place");
      continue;
    }
    auto fp = FingerprintFolder(folder);
    if (!fp.ok()) {
      if (fp.status().code() != StatusCode::kNotFound) report(name, fp.status().message());
      continue;  // NotFound: another watcher took it meanwhile
    }
    if (fp->files == 0) {
      seen_.erase(name);
      continue;
    }
    const bool by_marker = IsRegularFile(folder / kInboxReadyMarker);
    if (!by_marker) {
      // The folder's identity is part of its state: a folder taken and
      // made again under the same name starts its quiet period afresh.
      const std::string state =
          fp->digest + ":" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
      Seen& seen = seen_[name];
      if (seen.digest != state) {
        seen = {state, now_ms};
        continue;
      }
      if (now_ms - seen.changed_ms < quiet_ms) continue;
    }
    auto claimed = MoveInto(folder, root / ".processing", name + "-" + UtcStamp());
    if (!claimed.ok()) {
      if (claimed.status().code() == StatusCode::kNotFound) {
        seen_.erase(name);  // the rename decided: another watcher has it
      } else {
        report(name, "cannot claim: " + claimed.status().message());
      }
      continue;
    }
    seen_.erase(name);
    reported_.erase(name);
    InboxBatch batch{name, *claimed, *fp, by_marker};
    // What was moved, should anything have changed since the scan.
    if (auto after = FingerprintFolder(*claimed); after.ok()) batch.fingerprint = *after;
    batches.push_back(std::move(batch));
  }
  std::erase_if(seen_, [&](const auto& kv) { return !present.count(kv.first); });
  std::erase_if(reported_, [&](const auto& kv) { return !present.count(kv.first); });
  return batches;
}

std::map<std::string, double> InboxWatcher::Pending(int64_t now_ms) const {
  std::map<std::string, double> out;
  for (const auto& [name, seen] : seen_) {
    const double left = options_.quiet_seconds - (now_ms - seen.changed_ms) / 1000.0;
    out[name] = std::max(0.0, left);
  }
  return out;
}

Result<fs::path> SettleInboxBatch(const fs::path& inbox_root, const fs::path& claimed, bool ok,
                                  const std::string& reason, int64_t pipeline_run) {
  const fs::path folder = claimed.has_filename() ? claimed : claimed.parent_path();
  struct stat st {};
  if (::lstat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::NotFound(folder.string() + ": no such claimed batch");
  }
  if (!IsInside(inbox_root, folder.parent_path())) {
    return Status::InvalidInput(folder.string() + ": not inside the inbox " + inbox_root.string());
  }
  const std::string name = folder.filename().string();
  OrderedJson result = {{"dataset", DatasetOfClaim(name)},
                        {"ok", ok},
                        {"reason", reason},
                        {"pipeline_run", pipeline_run},
                        {"at", NowIso8601()}};
  // Written before the move, so that the result travels with the batch.
  RETURN_IF_ERROR(WriteFileAtomic(folder / "detops-result.json", result.dump(2) + "\n"));
  return MoveInto(folder, inbox_root / (ok ? ".done" : ".failed"), name);
}

}  // namespace detops

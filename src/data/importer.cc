// ImportDataset: read a source folder, hash its images into the blob store
// (served from a stat cache when unchanged), build the canonical manifest and
// record a new version when the content differs from the latest.

#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "data/data.h"
#include "data/image_header.h"
#include "data/source.h"
#include "data/versions_internal.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

struct CachedHash {
  int64_t size, mtime_ns, inode;
  std::string sha;
};

struct Hashed {
  std::string sha;
  Result<ImageHeader> header = Status::Internal("not probed");
  bool hashed = false;      // read from disk (not a cache hit)
  bool new_header = false;  // header probed now, to be cached
  Status error;             // the file could not be read at all
};

Split SplitByHash(const std::string& sha, const SplitRatios& r) {
  double u = static_cast<double>(std::stoull(sha.substr(0, 8), nullptr, 16)) / 4294967296.0;
  double total = r.train + r.val + r.test;
  if (u < r.train / total) return Split::kTrain;
  if (u < (r.train + r.val) / total) return Split::kVal;
  return Split::kTest;
}

Result<std::unordered_map<std::string, CachedHash>> LoadHashCache(Database& db,
                                                                  const std::string& root) {
  std::unordered_map<std::string, CachedHash> out;
  // Rows for files under root: "root/" <= path < "root0" ('0' follows '/').
  ASSIGN_OR_RETURN(auto rows, db.Query("SELECT path, size, mtime_ns, inode, sha FROM "
                                       "file_hash_cache WHERE path >= ? AND path < ?",
                                       {root + "/", root + "0"}));
  for (const SqlRow& r : rows) out[r.Text(0)] = {r.Int(1), r.Int(2), r.Int(3), r.Text(4)};
  return out;
}

Result<std::unordered_map<std::string, ImageHeader>> LoadHeaders(Database& db) {
  std::unordered_map<std::string, ImageHeader> out;
  ASSIGN_OR_RETURN(
      auto rows, db.Query("SELECT sha, format, width, height FROM image_headers WHERE error = ''"));
  for (const SqlRow& r : rows) {
    out[r.Text(0)] = {r.Text(1), static_cast<int>(r.Int(2)), static_cast<int>(r.Int(3)), 1};
  }
  return out;
}

}  // namespace

Result<ImportResult> ImportDataset(Workspace& ws, const ImportOptions& options) {
  RETURN_IF_ERROR(CheckDatasetName(options.name));
  std::error_code ec;
  fs::path source = fs::absolute(options.source, ec).lexically_normal();
  if (source.filename().empty()) source = source.parent_path();
  if (!fs::exists(source, ec))
    return Status::NotFound(source.string() + ": no such file or folder");
  std::string format = options.format;
  if (format == "auto") {
    ASSIGN_OR_RETURN(format, DetectFormat(source));
  }
  Result<SourceSet> read =
      Status::InvalidInput("unknown format '" + format + "' (yolo|coco|voc|auto)");
  if (format == "yolo") read = ReadYolo(source);
  if (format == "coco") read = ReadCoco(source);
  if (format == "voc") read = ReadVoc(source);
  if (!read.ok()) return read.status();
  SourceSet set = std::move(read).value();

  // Hash every image, in parallel; unchanged files come from the stat cache.
  std::string root_key = fs::weakly_canonical(set.root, ec).string();
  ASSIGN_OR_RETURN(auto cache, LoadHashCache(ws.db(), root_key));
  ASSIGN_OR_RETURN(auto headers, LoadHeaders(ws.db()));
  std::vector<Hashed> hashed(set.images.size());
  std::vector<CachedHash> stat_of(set.images.size());
  std::vector<std::string> key_of(set.images.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto worker = [&] {
    for (size_t i; (i = next++) < set.images.size();) {
      const fs::path& p = set.images[i].path;
      Hashed& h = hashed[i];
      // The cache key: the canonical root plus the path below it (resolving
      // every image path would cost several syscalls per component).
      std::string key = root_key + "/" + RelativeName(p, set.root);
      key_of[i] = key;
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) {
        h.error = Status::IOError(RelativeName(p, set.root) + ": cannot stat");
        continue;
      }
      CachedHash now{st.st_size,
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                     static_cast<int64_t>(st.st_ino), ""};
      auto c = cache.find(key);
      if (c != cache.end() && c->second.size == now.size && c->second.mtime_ns == now.mtime_ns &&
          c->second.inode == now.inode && ws.blobs().Has(c->second.sha)) {
        h.sha = c->second.sha;
        auto hd = headers.find(h.sha);
        if (hd != headers.end()) h.header = hd->second;
      }
      if (h.sha.empty() || !h.header.ok()) {
        auto bytes = ReadFile(p);
        if (!bytes.ok()) {
          h.error = bytes.status();
          continue;
        }
        auto sha = ws.blobs().Put(*bytes);
        if (!sha.ok()) {
          h.error = sha.status();
          continue;
        }
        h.sha = *sha;
        h.hashed = true;
        h.header = ProbeImageHeader(*bytes, RelativeName(p, set.root));
        h.new_header = true;
      }
      now.sha = h.sha;
      stat_of[i] = now;
      size_t d = ++done;
      if (options.progress) {
        std::lock_guard lock(progress_mu);
        options.progress(d, set.images.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, options.threads); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  // The manifest.
  Manifest manifest;
  manifest.classes = set.classes;
  std::vector<SourceIssue> issues = set.issues;
  ImportResult result;
  for (size_t i = 0; i < set.images.size(); ++i) {
    SourceImage& si = set.images[i];
    Hashed& h = hashed[i];
    std::string rel = RelativeName(si.path, set.root);
    if (!h.error.ok()) {  // unreadable: reported, not imported
      issues.push_back({"image_unreadable", rel, 0, h.error.message()});
      continue;
    }
    ImageEntry e;
    e.blob = h.sha;
    e.name = si.name;
    e.split = si.split ? *si.split : SplitByHash(h.sha, options.ratios);
    e.labelled = si.labelled;
    if (h.header.ok()) {
      e.width = h.header->width;
      e.height = h.header->height;
    } else {
      // Kept (content is not lost) with size 0: validation names it.
      issues.push_back({"image_unreadable", rel, 0, h.header.status().message()});
    }
    double w = si.declared_width > 0 ? si.declared_width : e.width;
    double hgt = si.declared_height > 0 ? si.declared_height : e.height;
    for (Box b : si.boxes) {
      if (si.pixel_boxes && w > 0 && hgt > 0) {
        b.x1 /= w;
        b.x2 /= w;
        b.y1 /= hgt;
        b.y2 /= hgt;
      }
      e.boxes.push_back(b);
    }
    result.images_hashed += h.hashed ? 1 : 0;
    manifest.images.push_back(std::move(e));
  }
  if (manifest.images.empty()) {
    return Status::InvalidInput(source.string() + ": none of the " +
                                std::to_string(set.images.size()) + " images could be read");
  }
  Canonicalize(manifest);
  result.images = static_cast<int>(manifest.images.size());

  NewVersion nv;
  nv.dataset = options.name;
  nv.source = source.string();
  nv.format = set.format;
  nv.manifest = &manifest;
  nv.issues = &issues;
  Status s = ws.db().InTransaction([&]() -> Status {
    for (size_t i = 0; i < set.images.size(); ++i) {
      if (!hashed[i].error.ok()) continue;
      if (hashed[i].hashed) {
        const CachedHash& c = stat_of[i];
        RETURN_IF_ERROR(ws.db().Exec(
            "INSERT INTO file_hash_cache (path, size, mtime_ns, inode, sha) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "inode = excluded.inode, sha = excluded.sha",
            {key_of[i], c.size, c.mtime_ns, c.inode, c.sha}));
      }
      if (hashed[i].new_header && hashed[i].header.ok()) {
        const ImageHeader& hd = *hashed[i].header;
        RETURN_IF_ERROR(ws.db().Exec(
            "INSERT INTO image_headers (sha, format, width, height, error) VALUES (?, ?, ?, ?, '') "
            "ON CONFLICT (sha) DO NOTHING",
            {hashed[i].sha, hd.format, int64_t{hd.width}, int64_t{hd.height}}));
      }
    }
    ASSIGN_OR_RETURN(auto created, RecordVersion(ws, nv, result.version));
    result.created = created;
    return Status::Ok();
  });
  RETURN_IF_ERROR(s);
  return result;
}

}  // namespace detops

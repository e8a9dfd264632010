// ImportDataset: read a source folder, hash its images into the blob store
// (served from a stat cache when unchanged), build the canonical manifest and
// record a new version when the content differs from the latest.

#include <sys/stat.h>

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>

#include "core/parallel.h"
#include "data/data.h"
#include "data/image_header.h"
#include "data/origins.h"
#include "data/source.h"
#include "data/versions_internal.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

struct CachedHash {
  int64_t size = 0, mtime_ns = 0, inode = 0;
  std::string sha;
};

// What hashing learnt of one source image.
struct Hashed {
  std::string sha;
  Result<ImageHeader> header = Status::Internal("not probed");
  bool hashed = false;      // read from disk (not a cache hit)
  bool new_header = false;  // header probed now, to be cached
  Status error;             // the file could not be read at all
  std::string cache_key;    // canonical root + path below it
  CachedHash stat;          // what to cache when `hashed`
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

// Resolves the source folder and runs the reader for its format.
Result<SourceSet> ReadSource(const ImportOptions& options, fs::path& source) {
  std::error_code ec;
  source = fs::absolute(options.source, ec).lexically_normal();
  if (source.filename().empty()) source = source.parent_path();
  if (!fs::exists(source, ec))
    return Status::NotFound(source.string() + ": no such file or folder");
  std::string format = options.format;
  if (format == "auto") {
    ASSIGN_OR_RETURN(format, DetectFormat(source));
  }
  if (format == "yolo") return ReadYolo(source);
  if (format == "coco") return ReadCoco(source);
  if (format == "voc") return ReadVoc(source);
  return Status::InvalidInput("unknown format '" + format + "' (yolo|coco|voc|auto)");
}

// Hashes one image into the blob store and probes its header, unless the
// stat cache and the header cache already know it.
Hashed HashImage(Workspace& ws, const fs::path& p, const fs::path& root,
                 const std::string& root_key,
                 const std::unordered_map<std::string, CachedHash>& cache,
                 const std::unordered_map<std::string, ImageHeader>& headers) {
  Hashed h;
  std::string rel = RelativeName(p, root);
  // The cache key: the canonical root plus the path below it (resolving
  // every image path would cost several syscalls per component).
  h.cache_key = root_key + "/" + rel;
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    h.error = Status::IOError(rel + ": cannot stat");
    return h;
  }
  h.stat = {st.st_size, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
            static_cast<int64_t>(st.st_ino), ""};
  auto c = cache.find(h.cache_key);
  if (c != cache.end() && c->second.size == h.stat.size && c->second.mtime_ns == h.stat.mtime_ns &&
      c->second.inode == h.stat.inode && ws.blobs().Has(c->second.sha)) {
    h.sha = c->second.sha;
    auto hd = headers.find(h.sha);
    if (hd != headers.end()) h.header = hd->second;
  }
  if (h.sha.empty() || !h.header.ok()) {
    auto bytes = ReadFile(p);
    if (!bytes.ok()) {
      h.error = bytes.status();
      return h;
    }
    auto sha = ws.blobs().Put(*bytes);
    if (!sha.ok()) {
      h.error = sha.status();
      return h;
    }
    h.sha = *sha;
    h.hashed = true;
    h.header = ProbeImageHeader(*bytes, rel);
    h.new_header = true;
  }
  h.stat.sha = h.sha;
  return h;
}

// Hashes every image of `set` in parallel; one entry per image, in order.
// A file that cannot be read is an entry with `error` set, and counts in
// the progress like any other.
Result<std::vector<Hashed>> HashImages(Workspace& ws, const SourceSet& set,
                                       const ImportOptions& options) {
  std::error_code ec;
  std::string root_key = fs::weakly_canonical(set.root, ec).string();
  ASSIGN_OR_RETURN(auto cache, LoadHashCache(ws.db(), root_key));
  ASSIGN_OR_RETURN(auto headers, LoadHeaders(ws.db()));
  std::vector<Hashed> hashed(set.images.size());
  ParallelForOptions parallel;
  parallel.threads = std::max(1, options.threads);
  parallel.progress = options.progress;
  RETURN_IF_ERROR(ParallelFor(
      set.images.size(),
      [&](size_t i) {
        hashed[i] = HashImage(ws, set.images[i].path, set.root, root_key, cache, headers);
        return Status::Ok();
      },
      parallel));
  return hashed;
}

// The image's boxes in normalized corners: pixel boxes (COCO, VOC) are
// divided by the declared size, or by the real one when none is declared.
std::vector<Box> NormalizedBoxes(const SourceImage& si, int width, int height) {
  double w = si.declared_width > 0 ? si.declared_width : width;
  double h = si.declared_height > 0 ? si.declared_height : height;
  std::vector<Box> out;
  for (Box b : si.boxes) {
    if (si.pixel_boxes && w > 0 && h > 0) {
      b.x1 /= w;
      b.x2 /= w;
      b.y1 /= h;
      b.y2 /= h;
    }
    out.push_back(b);
  }
  return out;
}

// What a COCO/VOC file declares about an image's size, when that differs
// from the real size: a warning, since boxes are scaled from the declared
// size (the frame they were drawn in) and stay right for a resized image;
// where they land outside, boxes_inside_image names this cause.
std::optional<SourceIssue> DeclaredSizeIssue(const SourceImage& si, const std::string& rel,
                                             int width, int height) {
  if (si.declared_width <= 0 || si.declared_height <= 0 || width <= 0 || height <= 0) {
    return std::nullopt;
  }
  if (si.declared_width == width && si.declared_height == height) return std::nullopt;
  std::string declared =
      std::to_string(si.declared_width) + "x" + std::to_string(si.declared_height);
  std::string real = std::to_string(width) + "x" + std::to_string(height);
  std::string what = si.coco_image_id >= 0
                         ? "image id " + std::to_string(si.coco_image_id) + " (" + rel + ")"
                         : rel;
  std::string why = si.declared_width == height && si.declared_height == width
                        ? " (turned by its EXIF orientation?)"
                        : "";
  return SourceIssue{"declared_size", si.label_file, 0,
                     what + " is declared " + declared + " but the image is " + real + why +
                         "; its boxes are scaled from the declared size"};
}

// The canonical manifest of the readable images, with where each box came
// from (same order); adds an issue for each image that could not be read or
// probed, or whose declared size is not its real one.
Manifest BuildManifest(const SourceSet& set, const std::vector<Hashed>& hashed,
                       const SplitRatios& ratios, std::vector<SourceIssue>& issues,
                       BoxOrigins& origins) {
  Manifest manifest;
  manifest.classes = set.classes;
  std::map<std::tuple<Split, std::string, std::string>, std::deque<ImageOrigin>> origin_of;
  for (size_t i = 0; i < set.images.size(); ++i) {
    const SourceImage& si = set.images[i];
    const Hashed& h = hashed[i];
    std::string rel = RelativeName(si.path, set.root);
    if (!h.error.ok()) {  // unreadable: reported, not imported
      issues.push_back({"image_unreadable", rel, 0, h.error.message()});
      continue;
    }
    ImageEntry e;
    e.blob = h.sha;
    e.name = si.name;
    e.split = si.split ? *si.split : SplitByHash(h.sha, ratios);
    e.labelled = si.labelled;
    ImageOrigin o{si.label_file, si.box_origins, si.coco_image_id, 0, 0};
    if (h.header.ok()) {
      e.width = h.header->width;
      e.height = h.header->height;
      if (auto issue = DeclaredSizeIssue(si, rel, e.width, e.height)) {
        issues.push_back(*issue);
        o.declared_width = si.declared_width;
        o.declared_height = si.declared_height;
      }
    } else {
      // Kept (content is not lost) with size 0: validation names it.
      issues.push_back({"image_unreadable", rel, 0, h.header.status().message()});
    }
    e.boxes = NormalizedBoxes(si, e.width, e.height);
    origin_of[{e.split, e.name, e.blob}].push_back(std::move(o));
    manifest.images.push_back(std::move(e));
  }
  Canonicalize(manifest);
  origins.annotation_ids = set.format == "coco";
  for (const ImageEntry& e : manifest.images) {
    auto& queue = origin_of[{e.split, e.name, e.blob}];
    origins.images.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return manifest;
}

// In one transaction: the stat and header caches of what was read now, and
// the version (new unless the latest has the same content).
Status CommitVersion(Workspace& ws, const std::vector<Hashed>& hashed, const NewVersion& nv,
                     ImportResult& result) {
  return ws.db().InTransaction([&]() -> Status {
    for (const Hashed& h : hashed) {
      if (!h.error.ok()) continue;
      if (h.hashed) {
        RETURN_IF_ERROR(ws.db().Exec(
            "INSERT INTO file_hash_cache (path, size, mtime_ns, inode, sha) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "inode = excluded.inode, sha = excluded.sha",
            {h.cache_key, h.stat.size, h.stat.mtime_ns, h.stat.inode, h.stat.sha}));
      }
      if (h.new_header && h.header.ok()) {
        RETURN_IF_ERROR(ws.db().Exec(
            "INSERT INTO image_headers (sha, format, width, height, error) VALUES (?, ?, ?, ?, '') "
            "ON CONFLICT (sha) DO NOTHING",
            {h.sha, h.header->format, int64_t{h.header->width}, int64_t{h.header->height}}));
      }
    }
    ASSIGN_OR_RETURN(result.created, RecordVersion(ws, nv, result.version));
    return Status::Ok();
  });
}

// The latest version of `name` with `batch` added (append imports); the
// batch alone when the dataset has no version yet. Origins follow the
// images; the latest version's images have none (they are in its own
// record).
Result<Manifest> AppendToLatest(Workspace& ws, const std::string& name, const Manifest& batch,
                                BoxOrigins& origins) {
  auto latest = ResolveVersion(ws, {name, 0});
  if (!latest.ok()) {
    if (latest.status().code() == StatusCode::kNotFound) return batch;
    return latest.status();
  }
  ASSIGN_OR_RETURN(Manifest base, LoadManifest(ws, *latest));
  std::map<std::string, int> id_of;
  for (size_t i = 0; i < base.classes.size(); ++i) id_of[base.classes[i]] = static_cast<int>(i);
  // A YOLO batch without data.yaml names its classes by number ("class0",
  // ...): those are the dataset's own ids, not new classes.
  bool numbered = !batch.classes.empty();
  for (size_t i = 0; i < batch.classes.size(); ++i) {
    numbered &= batch.classes[i] == "class" + std::to_string(i);
  }
  std::vector<int> remap;
  if (numbered) {
    // An id the dataset does not have stays unknown (class_ids_known names it).
    for (size_t i = 0; i < batch.classes.size(); ++i) remap.push_back(static_cast<int>(i));
  }
  for (const std::string& c : numbered ? std::vector<std::string>{} : batch.classes) {
    auto [it, added] = id_of.emplace(c, static_cast<int>(base.classes.size()));
    if (added) base.classes.push_back(c);
    remap.push_back(it->second);
  }
  using Key = std::tuple<Split, std::string, std::string>;
  std::map<Key, std::deque<ImageOrigin>> origin_of;
  std::map<std::pair<Split, std::string>, std::string> blob_of;  // the dataset's names
  for (const ImageEntry& e : base.images) blob_of[{e.split, e.name}] = e.blob;
  Manifest out;
  out.classes = base.classes;
  std::vector<ImageEntry> added;
  for (size_t i = 0; i < batch.images.size(); ++i) {
    ImageEntry e = batch.images[i];
    for (Box& b : e.boxes) b.class_id = remap.at(static_cast<size_t>(b.class_id));
    // Cameras reuse file names: a batch image named like one of the
    // dataset's is another photo (renamed after its content) unless it is
    // the same photo (then its labels are the batch's).
    if (auto it = blob_of.find({e.split, e.name}); it != blob_of.end() && it->second != e.blob) {
      const fs::path n(e.name);
      e.name = n.stem().string() + "-" + e.blob.substr(0, 8) + n.extension().string();
    }
    const ImageOrigin* o = origins.Image(i);
    origin_of[{e.split, e.name, e.blob}].push_back(o ? *o : ImageOrigin{});
    added.push_back(std::move(e));
  }
  std::set<std::pair<Split, std::string>> replaced;
  for (const ImageEntry& e : added) replaced.insert({e.split, e.name});
  for (const ImageEntry& e : base.images) {
    if (replaced.count({e.split, e.name})) continue;
    origin_of[{e.split, e.name, e.blob}].push_back(ImageOrigin{});
    out.images.push_back(e);
  }
  for (ImageEntry& e : added) out.images.push_back(std::move(e));
  Canonicalize(out);
  origins.images.clear();
  for (const ImageEntry& e : out.images) {
    auto& queue = origin_of[{e.split, e.name, e.blob}];
    origins.images.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return out;
}

}  // namespace

Result<ImportResult> ImportDataset(Workspace& ws, const ImportOptions& options) {
  RETURN_IF_ERROR(CheckDatasetName(options.name));
  fs::path source;
  ASSIGN_OR_RETURN(SourceSet set, ReadSource(options, source));
  ASSIGN_OR_RETURN(std::vector<Hashed> hashed, HashImages(ws, set, options));
  std::vector<SourceIssue> issues = set.issues;
  BoxOrigins origins;
  Manifest manifest = BuildManifest(set, hashed, options.ratios, issues, origins);
  if (manifest.images.empty()) {
    return Status::InvalidInput(source.string() + ": none of the " +
                                std::to_string(set.images.size()) + " images could be read");
  }
  if (!options.class_map.empty()) {
    ASSIGN_OR_RETURN(ClassMapCounts mapped,
                     ApplyClassMap(options.class_map, source.string(), manifest, &origins));
    (void)mapped;
  }
  if (options.append) {
    ASSIGN_OR_RETURN(manifest, AppendToLatest(ws, options.name, manifest, origins));
  }
  ImportResult result;
  result.images = static_cast<int>(manifest.images.size());
  for (const Hashed& h : hashed) result.images_hashed += h.error.ok() && h.hashed ? 1 : 0;
  NewVersion nv;
  nv.dataset = options.name;
  nv.source = source.string();
  nv.format = set.format;
  nv.manifest = &manifest;
  nv.issues = &issues;
  nv.origins = &origins;
  RETURN_IF_ERROR(CommitVersion(ws, hashed, nv, result));
  return result;
}

}  // namespace detops

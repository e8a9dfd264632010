// Feedback export: the dataset's latest version, exported as a YOLO folder,
// plus one image and label file per corrected prediction, imported back as
// the next version. The YOLO layout keeps every image in its split folder,
// so the parent's images keep their splits (and their content address:
// re-importing an export gives the same manifest).

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "core/fs.h"
#include "core/hash.h"
#include "data/image_header.h"
#include "monitor/monitor.h"
#include "pipeline/pipeline.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

struct Item {
  FeedbackRecord feedback;
  std::string bytes;  // the kept image
  std::string name;   // file name under images/<split>/
  int width = 0, height = 0;
};

// The working folder of one dataset's export, held under an exclusive
// lock and removed when the export ends, whichever way. Its path is the same
// every time so that the importer's stat cache reuses its rows instead of
// adding one per image and export.
class WorkFolder {
 public:
  static Result<std::unique_ptr<WorkFolder>> Acquire(const fs::path& path) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return Status::IOError(path.parent_path().string() + ": cannot create: " + ec.message());
    fs::path lock = path;
    lock += ".lock";
    int fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IOError(lock.string() + ": cannot open");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return Status::Unavailable("another feedback export into this dataset is running (" +
                                 lock.string() + ")");
    }
    auto out = std::unique_ptr<WorkFolder>(new WorkFolder(path, fd));
    fs::remove_all(path, ec);  // left by an interrupted export
    return out;
  }
  ~WorkFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    ::close(fd_);
  }
  WorkFolder(const WorkFolder&) = delete;
  WorkFolder& operator=(const WorkFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  WorkFolder(fs::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  fs::path path_;
  int fd_;
};

Result<std::string> ExtensionFor(const std::string& format) {
  static const std::map<std::string, std::string> kExt = {
      {"jpeg", ".jpg"}, {"png", ".png"}, {"webp", ".webp"}, {"bmp", ".bmp"}, {"tiff", ".tif"}};
  auto it = kExt.find(format);
  if (it == kExt.end()) return Status::InvalidInput("unsupported image format '" + format + "'");
  return it->second;
}

Status WritePlain(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return Status::IOError(path.string() + ": cannot write");
  return Status::Ok();
}

// The dataset that receives the feedback: the one given, else the dataset of
// the model's production version, else of its latest version.
Result<std::string> TargetDataset(Workspace& ws, const FeedbackExportOptions& o) {
  if (!o.dataset.empty()) {
    ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(o.dataset));
    if (ref.version != 0) {
      return Status::InvalidInput("the dataset is named without a version ('" + ref.name +
                                  "'): the new version always follows the latest");
    }
    return ref.name;
  }
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  ASSIGN_OR_RETURN(std::optional<int> production, registry->AliasVersion(o.model, kProduction));
  ASSIGN_OR_RETURN(ModelVersion model,
                   registry->Get(ModelRef{o.model, production.value_or(0), ""}));
  auto ref = ParseDatasetRef(model.dataset_version);
  if (!ref.ok()) {
    return ref.status().WithContext(model.Ref() + " names no usable dataset version; pass one");
  }
  return ref->name;
}

// The version feedback is added to: the latest one, passing over versions
// whose validation failed (bad data that arrived is never built on
// automatically; a person fixes it and imports again).
Result<VersionInfo> BaseVersion(Workspace& ws, const std::string& dataset) {
  ASSIGN_OR_RETURN(std::vector<VersionInfo> versions, ListVersions(ws, dataset));
  for (const VersionInfo& v : versions) {
    if (v.validation_status != "failed") return v;
  }
  if (versions.empty()) return Status::NotFound("dataset " + dataset + " has no version");
  return Status::InvalidInput("every version of " + dataset +
                              " failed validation: nothing to add feedback to");
}

// The YOLO label text of one feedback, boxes normalized by the image size.
Result<std::string> LabelText(const Item& item, const std::map<std::string, int>& class_ids,
                              const std::string& dataset) {
  std::string text;
  const double w = item.width, h = item.height;
  for (const FeedbackBox& b : item.feedback.boxes) {
    auto c = class_ids.find(b.class_name);
    if (c == class_ids.end()) {
      std::string known;
      for (const auto& [name, id] : class_ids) known += (known.empty() ? "" : ", ") + name;
      return Status::InvalidInput("feedback " + std::to_string(item.feedback.id) + " (prediction " +
                                  item.feedback.prediction_id + "): class '" + b.class_name +
                                  "' is not a class of dataset " + dataset + " (" + known + ")");
    }
    Box n;
    n.class_id = c->second;
    n.x1 = b.x1 / w;
    n.y1 = b.y1 / h;
    n.x2 = b.x2 / w;
    n.y2 = b.y2 / h;
    text += YoloLabelLine(n);
  }
  return text;
}

// An image and its label file into a YOLO folder's split.
Status WriteItem(const fs::path& root, const std::string& split, const Item& item,
                 const std::string& label) {
  RETURN_IF_ERROR(WritePlain(root / "images" / split / item.name, item.bytes));
  return WritePlain((root / "labels" / split / item.name).replace_extension(".txt"), label);
}

}  // namespace

Result<FeedbackExportResult> RunFeedbackExportJob(Workspace& ws, const FeedbackExportOptions& o) {
  if (o.model.empty()) return Status::InvalidInput("name the model whose feedback to export");
  std::optional<Split> split = ParseSplit(o.split);
  if (!split) {
    return Status::InvalidInput("split must be train, val or test; got '" + o.split + "'");
  }
  ASSIGN_OR_RETURN(std::string dataset, TargetDataset(ws, o));
  // Held from reading the feedback to marking it, so that two exports into
  // one dataset cannot both take the same feedback.
  ASSIGN_OR_RETURN(auto work, WorkFolder::Acquire(ws.root() / (kFeedbackWorkPrefix + dataset)));

  FeedbackExportResult out;
  ASSIGN_OR_RETURN(auto feedback, ListFeedback(ws, o.model, !o.include_exported));
  std::vector<Item> items;
  for (FeedbackRecord& f : feedback) {
    ASSIGN_OR_RETURN(StoredPrediction p, GetPrediction(ws, f.prediction_id));
    if (p.image_blob.empty()) {
      ++out.skipped_no_image;
      continue;
    }
    Item item;
    ASSIGN_OR_RETURN(item.bytes, ws.blobs().Get(p.image_blob));
    const std::string what = "kept image of prediction " + f.prediction_id;
    ASSIGN_OR_RETURN(ImageHeader header, ProbeImageHeader(item.bytes, what));
    ASSIGN_OR_RETURN(std::string ext, ExtensionFor(header.format));
    // Feedback boxes are in the pixels the server saw; they are normalized
    // by the size the dataset will record, so the two must agree.
    if (header.width != p.record.width || header.height != p.record.height) {
      return Status::InvalidInput(what + " is " + std::to_string(header.width) + "x" +
                                  std::to_string(header.height) + " but the prediction logged " +
                                  std::to_string(p.record.width) + "x" +
                                  std::to_string(p.record.height));
    }
    item.width = header.width;
    item.height = header.height;
    item.name = "feedback-" + f.prediction_id + ext;
    item.feedback = std::move(f);
    items.push_back(std::move(item));
  }
  if (items.empty()) {  // nothing new: the dataset as it is
    auto latest = BaseVersion(ws, dataset);
    if (latest.ok()) out.version = *latest;
    return out;
  }

  ASSIGN_OR_RETURN(VersionInfo parent, BaseVersion(ws, dataset));
  ASSIGN_OR_RETURN(Manifest base, LoadManifest(ws, parent));
  int difficult = 0;
  for (const ImageEntry& e : base.images) {
    for (const Box& b : e.boxes) difficult += b.difficult ? 1 : 0;
  }
  if (difficult > 0) {
    // The YOLO round trip has no place for the flag: refuse rather than lose it.
    return Status::InvalidInput(parent.Ref() + " has " + std::to_string(difficult) +
                                " difficult/crowd boxes, which a feedback export would lose");
  }
  std::map<std::string, int> class_ids;
  for (size_t i = 0; i < base.classes.size(); ++i) {
    class_ids.emplace(base.classes[i], static_cast<int>(i));
  }
  std::vector<std::string> labels;
  for (const Item& item : items) {
    ASSIGN_OR_RETURN(std::string text, LabelText(item, class_ids, dataset));
    labels.push_back(std::move(text));
  }

  // Held-out feedback (new conditions to gate on, never trained on) goes
  // to its own dataset; the choice is a hash of the prediction id, so a
  // re-export puts each image on the same side.
  std::vector<size_t> keep, held;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string h = Sha256Hex(items[i].feedback.prediction_id).substr(0, 8);
    const double u = static_cast<double>(std::stoul(h, nullptr, 16)) / 4294967296.0;
    (u < o.holdout ? held : keep).push_back(i);
  }
  std::vector<int64_t> ids;
  out.version = parent;
  if (!keep.empty()) {
    const fs::path src = work->path() / dataset;
    RETURN_IF_ERROR(ExportDataset(ws, parent, src, "yolo"));
    std::map<std::string, Split> split_of;  // the parent's names (new feedback replaces old)
    for (const ImageEntry& e : base.images) split_of[e.name] = e.split;
    for (size_t i : keep) {
      const Item& item = items[i];
      if (auto old = split_of.find(item.name); old != split_of.end()) {
        std::error_code ec;
        const std::string s = SplitName(old->second);
        fs::remove(src / "images" / s / item.name, ec);
        fs::remove((src / "labels" / s / item.name).replace_extension(".txt"), ec);
      }
      RETURN_IF_ERROR(WriteItem(src, SplitName(*split), item, labels[i]));
      out.boxes += static_cast<int>(item.feedback.boxes.size());
      ids.push_back(item.feedback.id);
    }
    ImportOptions io;
    io.name = dataset;
    io.source = src;
    io.format = "yolo";
    ASSIGN_OR_RETURN(ImportResult imported, ImportDataset(ws, io));
    out.created = imported.created;
    out.version = imported.version;
    out.images_added = static_cast<int>(keep.size());
    RETURN_IF_ERROR(MarkFeedbackExported(ws, ids, imported.version.Ref()));
  }
  if (!held.empty()) {
    const std::string name = o.holdout_dataset.empty() ? dataset + "-holdout" : o.holdout_dataset;
    const fs::path src = work->path() / name;
    auto previous = ResolveVersion(ws, {name, 0});
    if (previous.ok()) {
      RETURN_IF_ERROR(ExportDataset(ws, *previous, src, "yolo"));
    } else {
      std::string yaml = "# held-out feedback of " + dataset + "\npath: .\ntest: images/test\n";
      yaml += "nc: " + std::to_string(base.classes.size()) + "\nnames:\n";
      for (const std::string& c : base.classes) yaml += "  - " + Json(c).dump() + "\n";
      std::error_code ec;
      fs::create_directories(src, ec);
      RETURN_IF_ERROR(WriteFileAtomic(src / "data.yaml", yaml));
    }
    std::vector<int64_t> held_ids;
    for (size_t i : held) {
      RETURN_IF_ERROR(WriteItem(src, "test", items[i], labels[i]));
      held_ids.push_back(items[i].feedback.id);
    }
    ImportOptions io;
    io.name = name;
    io.source = src;
    io.format = "yolo";
    ASSIGN_OR_RETURN(ImportResult imported, ImportDataset(ws, io));
    out.holdout_version = imported.version;
    out.holdout_images = static_cast<int>(held.size());
    RETURN_IF_ERROR(MarkFeedbackExported(ws, held_ids, imported.version.Ref()));
  }
  return out;
}

}  // namespace detops

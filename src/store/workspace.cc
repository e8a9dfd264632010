#include <chrono>
#include <ctime>
#include <set>

#include "store/store.h"

namespace detops {
namespace fs = std::filesystem;

int64_t SqlRow::Int(size_t i) const {
  const SqlValue& v = cols.at(i);
  if (auto* p = std::get_if<int64_t>(&v)) return *p;
  if (auto* p = std::get_if<double>(&v)) return static_cast<int64_t>(*p);
  if (auto* p = std::get_if<std::string>(&v)) return std::atoll(p->c_str());
  return 0;
}

double SqlRow::Real(size_t i) const {
  const SqlValue& v = cols.at(i);
  if (auto* p = std::get_if<double>(&v)) return *p;
  if (auto* p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  if (auto* p = std::get_if<std::string>(&v)) return std::atof(p->c_str());
  return 0;
}

std::string SqlRow::Text(size_t i) const {
  const SqlValue& v = cols.at(i);
  if (auto* p = std::get_if<std::string>(&v)) return *p;
  if (auto* p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  if (auto* p = std::get_if<double>(&v)) return std::to_string(*p);
  return "";
}

std::string NowIso8601() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms.count()));
  return out;
}

Result<std::unique_ptr<Workspace>> Workspace::Open(const WorkspaceOptions& options) {
  std::error_code ec;
  if (!fs::exists(options.root, ec)) {
    if (!options.create) return Status::NotFound(options.root.string() + ": no such workspace");
  } else if (!fs::is_directory(options.root, ec)) {
    return Status::InvalidInput(options.root.string() + ": workspace path is not a folder");
  }
  for (const char* sub : {"blobs", "inbox", "logs"}) {
    fs::create_directories(options.root / sub, ec);
    if (ec) {
      return Status::IOError((options.root / sub).string() + ": cannot create: " + ec.message());
    }
  }
  std::unique_ptr<Workspace> ws(new Workspace());
  ws->root_ = options.root;
  ASSIGN_OR_RETURN(ws->db_, OpenSqlite({options.root / "detops.db"}));
  RETURN_IF_ERROR(ws->db_->Migrate());
  ASSIGN_OR_RETURN(ws->blobs_, OpenFileBlobStore(options.root / "blobs"));
  return ws;
}

Result<int> Workspace::CollectGarbage() {
  // Blobs referenced by metadata: manifests and reports directly, images
  // through the manifests.
  std::set<std::string> live;
  ASSIGN_OR_RETURN(auto versions, db_->Query("SELECT manifest_sha FROM dataset_versions"));
  for (const SqlRow& r : versions) {
    std::string sha = r.Text(0);
    live.insert(sha);
    ASSIGN_OR_RETURN(std::string text, blobs_->Get(sha));
    ASSIGN_OR_RETURN(Json j, ParseJson(text, "manifest " + sha));
    for (const Json& img : j.at("images")) live.insert(img.at("blob").get<std::string>());
  }
  ASSIGN_OR_RETURN(auto reports, db_->Query("SELECT report_sha FROM validation_reports"));
  for (const SqlRow& r : reports) live.insert(r.Text(0));
  ASSIGN_OR_RETURN(auto artifacts, db_->Query("SELECT blob FROM run_artifacts"));
  for (const SqlRow& r : artifacts) live.insert(r.Text(0));
  ASSIGN_OR_RETURN(auto models,
                   db_->Query("SELECT weights_blob, profile_blob FROM model_versions"));
  ASSIGN_OR_RETURN(auto kept,
                   db_->Query("SELECT image_blob FROM predictions WHERE image_blob <> ''"));
  for (const SqlRow& r : kept) live.insert(r.Text(0));
  for (const SqlRow& r : models) {
    live.insert(r.Text(0));
    live.insert(r.Text(1));
  }
  int removed = 0;
  for (const std::string& sha : blobs_->List()) {
    if (live.count(sha)) continue;
    RETURN_IF_ERROR(blobs_->Remove(sha));
    ++removed;
  }
  fs::remove_all(root_ / "blobs" / ".tmp");
  fs::create_directories(root_ / "blobs" / ".tmp");
  return removed;
}

}  // namespace detops

// ValidateVersion: profiles a version's images (cached by content address),
// runs the suite and stores the report with the version.

#include "data/data.h"
#include "data/profile_cache.h"
#include "data/versions_internal.h"

namespace detops {
namespace {

const char* StatusOf(const ValidationReport& r) {
  if (!r.trainable()) return "failed";
  return r.failed_warnings() > 0 ? "warnings" : "passed";
}

}  // namespace

Result<ValidationReport> ValidateVersion(Workspace& ws, const VersionInfo& version,
                                         const ValidateOptions& options) {
  ASSIGN_OR_RETURN(Manifest manifest, LoadManifest(ws, version));
  ASSIGN_OR_RETURN(std::vector<ImageProfile> profiles,
                   ProfileManifest(ws, manifest, options.threads, options.progress));
  ASSIGN_OR_RETURN(BoxOrigins origins, LoadOrigins(ws, version));
  ValidationInput input{&manifest, &version.issues, &profiles, &origins};
  ValidationReport report = RunSuite(options.suite, input);
  ASSIGN_OR_RETURN(std::string report_sha, ws.blobs().Put(ReportToJson(report).dump()));
  Status s = ws.db().InTransaction([&]() -> Status {
    RETURN_IF_ERROR(ws.db().Exec(
        "INSERT INTO validation_reports (version_id, created_at, suite, status, report_sha) "
        "VALUES (?, ?, ?, ?, ?)",
        {version.id, NowIso8601(), report.suite, std::string(StatusOf(report)), report_sha}));
    return ws.db().Exec("UPDATE dataset_versions SET validation_status = ? WHERE id = ?",
                        {std::string(StatusOf(report)), version.id});
  });
  RETURN_IF_ERROR(s);
  return report;
}

Result<ValidationReport> LatestReport(Workspace& ws, const VersionInfo& version) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT report_sha FROM validation_reports WHERE "
                                            "version_id = ? ORDER BY id DESC LIMIT 1",
                                            {version.id}));
  if (rows.empty()) return Status::NotFound(version.Ref() + " has not been validated");
  ASSIGN_OR_RETURN(std::string text, ws.blobs().Get(rows[0].Text(0)));
  ASSIGN_OR_RETURN(Json j, ParseJson(text, "validation report of " + version.Ref()));
  return ReportFromJson(j);
}

}  // namespace detops

// Data steps: import a folder as a dataset version, validate a version,
// turn labelled feedback into a new version (and a held-out slice).

#include "core/hash.h"
#include "data/data.h"
#include "data/derive.h"
#include "orchestrate/inbox.h"
#include "orchestrate/steps_internal.h"

namespace detops {
namespace {

// "NAME" or "NAME@V" -> the version it means now.
Result<VersionInfo> VersionOf(Workspace& ws, const std::string& text) {
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(text));
  return ResolveVersion(ws, ref);
}

Json VersionOutputs(const VersionInfo& v) {
  return {{"dataset", v.Ref()}, {"name", v.dataset}, {"version", std::to_string(v.version)}};
}

}  // namespace

StepType ImportStep() {
  StepType t;
  t.name = "import";
  t.summary =
      "a folder (YOLO, COCO or VOC) as a new version of a dataset; append: add it to "
      "the latest version";
  t.required = {"dataset", "source"};
  t.optional = {"format", "append"};
  t.fingerprint = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(FolderFingerprint f, FingerprintFolder(c.Get("source")));
    Json facts = {{"source", f.digest}};
    if (c.Flag("append", false)) {
      auto latest = VersionOf(c.ws, c.Get("dataset"));
      facts["base"] = latest.ok() ? latest->Ref() : "";
    }
    return facts;
  };
  t.run = [](StepContext& c) -> Result<Json> {
    ImportOptions o;
    ASSIGN_OR_RETURN(o.name, c.Require("dataset"));
    ASSIGN_OR_RETURN(std::string source, c.Require("source"));
    o.source = source;
    o.format = c.Get("format", "auto");
    o.append = c.Flag("append", false);
    o.threads = c.threads;
    c.log("importing " + source + " into " + o.name + (o.append ? " (appended)" : ""));
    ASSIGN_OR_RETURN(ImportResult r, ImportDataset(c.ws, o));
    c.log((r.created ? "created " : "unchanged: ") + r.version.Ref() + ", " +
          std::to_string(r.images) + " images");
    Json out = VersionOutputs(r.version);
    out["created"] = r.created ? "true" : "false";
    out["images"] = std::to_string(r.images);
    return out;
  };
  return t;
}

StepType ValidateStep() {
  StepType t;
  t.name = "validate";
  t.summary =
      "runs an expectation suite on a dataset version; fails the pipeline when an "
      "error-level expectation fails (unless allow_failure)";
  t.required = {"dataset"};
  t.optional = {"suite", "allow_failure"};
  t.fingerprint = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(VersionInfo v, VersionOf(c.ws, c.Get("dataset")));
    Json facts = {{"version", v.Ref()}, {"id", v.id}};
    if (!c.Get("suite").empty()) {
      ASSIGN_OR_RETURN(facts["suite"], Sha256File(c.Get("suite")));
    }
    return facts;
  };
  t.run = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(VersionInfo v, VersionOf(c.ws, c.Get("dataset")));
    ValidateOptions o;
    o.threads = c.threads;
    if (!c.Get("suite").empty()) {
      ASSIGN_OR_RETURN(o.suite, LoadSuite(c.Get("suite")));
    }
    ASSIGN_OR_RETURN(ValidationReport report, ValidateVersion(c.ws, v, o));
    std::string failed;
    for (const ExpectationResult& e : report.results) {
      if (e.passed) continue;
      const char* sev = e.severity == Severity::kError ? "error" : "warning";
      c.log(std::string(sev) + ": " + e.type + ": " + e.summary);
      if (e.severity == Severity::kError) {
        failed += (failed.empty() ? "" : "; ") + e.type + ": " + e.summary;
      }
    }
    Json out = VersionOutputs(v);
    out["status"] = report.trainable() ? "passed" : "failed";
    out["failed"] = failed;
    out["errors"] = std::to_string(report.failed_errors());
    out["warnings"] = std::to_string(report.failed_warnings());
    if (!report.trainable() && !c.Flag("allow_failure", false)) {
      const std::string fix = DeriveFixCommand(report, v.Ref());
      return Status::InvalidInput("validation of " + v.Ref() + " failed: " + failed +
                                  (fix.empty() ? "" : "; fix: " + fix));
    }
    c.log(v.Ref() + " " + out["status"].get<std::string>());
    return out;
  };
  return t;
}

StepType FeedbackExportStep() {
  StepType t;
  t.name = "feedback-export";
  t.summary =
      "labelled feedback on a model's predictions -> a new dataset version (the latest "
      "plus those images), a held-out share -> the <dataset>-holdout slice";
  t.required = {"model"};
  t.optional = {"dataset", "split", "holdout"};
  t.fingerprint = [](StepContext& c) -> Result<Json> {
    // New feedback, or a new version of the dataset, changes the outputs.
    // The feedback there is, and the newest version of the dataset that no
    // feedback export made: the versions an earlier export of the same
    // feedback created do not make a re-run export again.
    ASSIGN_OR_RETURN(auto rows,
                     c.ws.db().Query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM feedback"));
    Json facts = {{"feedback", rows[0].Int(0)}, {"last", rows[0].Int(1)}};
    if (!c.Get("dataset").empty()) {
      ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(c.Get("dataset")));
      ASSIGN_OR_RETURN(auto versions, ListVersions(c.ws, ref.name));
      for (const VersionInfo& v : versions) {
        if (v.source.find(kFeedbackWorkPrefix) != std::string::npos) continue;
        facts["base"] = v.Ref();
        break;
      }
    }
    return facts;
  };
  t.run = [](StepContext& c) -> Result<Json> {
    FeedbackExportOptions o;
    ASSIGN_OR_RETURN(o.model, c.Require("model"));
    o.dataset = c.Get("dataset");
    if (!o.dataset.empty()) {
      ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(o.dataset));
      o.dataset = ref.name;
    }
    o.split = c.Get("split", "train");
    ASSIGN_OR_RETURN(o.holdout, c.Number("holdout", 0));
    ASSIGN_OR_RETURN(FeedbackExportResult r, RunFeedbackExportJob(c.ws, o));
    Json out;
    if (r.version.version > 0) {
      out = VersionOutputs(r.version);
    } else {
      return Status::NotFound("step " + c.step_id + ": the dataset of " + o.model +
                              "'s feedback has no version");
    }
    out["created"] = r.created ? "true" : "false";
    out["images_added"] = std::to_string(r.images_added);
    out["holdout_images"] = std::to_string(r.holdout_images);
    std::string holdout = r.holdout_images > 0 ? r.holdout_version.Ref() : "";
    if (holdout.empty()) {  // an earlier export's slice still holds
      auto earlier = VersionOf(c.ws, out["name"].get<std::string>() + "-holdout");
      if (earlier.ok()) holdout = earlier->Ref();
    }
    out["holdout"] = holdout;
    c.log("feedback of " + o.model + ": " + std::to_string(r.images_added) + " images into " +
          out["dataset"].get<std::string>() + ", " + std::to_string(r.holdout_images) +
          " held out" + (holdout.empty() ? "" : " (" + holdout + ")") +
          (r.skipped_no_image ? ", " + std::to_string(r.skipped_no_image) + " without a kept image"
                              : ""));
    return out;
  };
  return t;
}

}  // namespace detops

// Validation reports as JSON (for storage and the API) and as a table (for
// people).

#include <algorithm>
#include <sstream>

#include "data/validate.h"

namespace detops {
namespace {

const char* StatusWord(const ExpectationResult& r) {
  if (r.skipped) return "SKIP";
  if (r.passed) return "PASS";
  return r.severity == Severity::kError ? "FAIL" : "WARN";
}

// Reads `j[key]` as T; InvalidInput naming `where.key` otherwise.
template <typename T>
Status Field(const Json& j, const char* key, const std::string& where, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::InvalidInput(where + ": missing field '" + key + "'");
  try {
    out = it->get<T>();
  } catch (const Json::exception& e) {
    return Status::InvalidInput(where + "." + key + ": " + e.what());
  }
  return Status::Ok();
}

Result<ExpectationResult> ResultFromJson(const Json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidInput(where + ": expected an object");
  ExpectationResult r;
  std::string severity;
  RETURN_IF_ERROR(Field(j, "type", where, r.type));
  RETURN_IF_ERROR(Field(j, "severity", where, severity));
  std::optional<Severity> s = ParseSeverity(severity);
  if (!s) return Status::InvalidInput(where + ".severity: '" + severity + "' is not error/warning");
  r.severity = *s;
  RETURN_IF_ERROR(Field(j, "passed", where, r.passed));
  if (j.contains("skipped")) RETURN_IF_ERROR(Field(j, "skipped", where, r.skipped));
  RETURN_IF_ERROR(Field(j, "summary", where, r.summary));
  RETURN_IF_ERROR(Field(j, "observed", where, r.observed));
  Json findings;
  RETURN_IF_ERROR(Field(j, "findings", where, findings));
  if (!findings.is_array()) return Status::InvalidInput(where + ".findings: expected an array");
  for (size_t i = 0; i < findings.size(); ++i) {
    std::string at = where + ".findings[" + std::to_string(i) + "]";
    if (!findings[i].is_object()) return Status::InvalidInput(at + ": expected an object");
    Finding f;
    RETURN_IF_ERROR(Field(findings[i], "file", at, f.file));
    RETURN_IF_ERROR(Field(findings[i], "line", at, f.line));
    RETURN_IF_ERROR(Field(findings[i], "message", at, f.message));
    r.findings.push_back(std::move(f));
  }
  return r;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

Json ReportToJson(const ValidationReport& report) {
  Json results = Json::array();
  for (const auto& r : report.results) {
    Json findings = Json::array();
    for (const auto& f : r.findings) {
      findings.push_back({{"file", f.file}, {"line", f.line}, {"message", f.message}});
    }
    results.push_back({{"type", r.type},
                       {"severity", SeverityName(r.severity)},
                       {"passed", r.passed},
                       {"skipped", r.skipped},
                       {"summary", r.summary},
                       {"observed", r.observed},
                       {"findings", std::move(findings)}});
  }
  return {{"suite", report.suite},
          {"trainable", report.trainable()},
          {"failed_errors", report.failed_errors()},
          {"failed_warnings", report.failed_warnings()},
          {"results", std::move(results)}};
}

Result<ValidationReport> ReportFromJson(const Json& j) {
  if (!j.is_object()) return Status::InvalidInput("validation report: expected an object");
  ValidationReport report;
  RETURN_IF_ERROR(Field(j, "suite", "validation report", report.suite));
  Json results;
  RETURN_IF_ERROR(Field(j, "results", "validation report", results));
  if (!results.is_array()) {
    return Status::InvalidInput("validation report.results: expected an array");
  }
  for (size_t i = 0; i < results.size(); ++i) {
    ASSIGN_OR_RETURN(ExpectationResult r,
                     ResultFromJson(results[i], "results[" + std::to_string(i) + "]"));
    report.results.push_back(std::move(r));
  }
  return report;
}

std::string ReportToTable(const ValidationReport& report, size_t max_findings_per_row) {
  size_t type_w = std::string("EXPECTATION").size();
  for (const auto& r : report.results) type_w = std::max(type_w, r.type.size());
  const size_t status_w = 8, severity_w = 10;
  std::ostringstream out;
  out << "suite " << report.suite << ": " << (report.trainable() ? "trainable" : "NOT trainable")
      << " (" << report.failed_errors() << " errors, " << report.failed_warnings()
      << " warnings)\n";
  out << Pad("STATUS", status_w) << Pad("EXPECTATION", type_w + 2) << Pad("SEVERITY", severity_w)
      << "SUMMARY\n";
  for (const auto& r : report.results) {
    out << Pad(StatusWord(r), status_w) << Pad(r.type, type_w + 2)
        << Pad(SeverityName(r.severity), severity_w) << r.summary << "\n";
    if (r.passed) continue;
    size_t shown = std::min(max_findings_per_row, r.findings.size());
    for (size_t i = 0; i < shown; ++i) {
      const Finding& f = r.findings[i];
      out << std::string(status_w + 2, ' ');
      if (!f.file.empty()) {
        out << f.file;
        if (f.line > 0) out << ":" << f.line;
        out << ": ";
      }
      out << f.message << "\n";
    }
    if (r.findings.size() > shown) {
      out << std::string(status_w + 2, ' ') << "... and " << r.findings.size() - shown << " more\n";
    }
  }
  return out.str();
}

}  // namespace detops

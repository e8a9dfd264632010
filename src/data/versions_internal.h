#pragma once
// Writing version rows. Internal to the data module.

#include "data/data.h"

namespace detops {

struct NewVersion {
  std::string dataset;
  std::string source;
  std::string format;
  const Manifest* manifest = nullptr;  // canonical
  const std::vector<SourceIssue>* issues = nullptr;
};

// Inside a transaction: stores the manifest blob, creates the dataset when
// new, and adds version N+1 unless the latest version has the same content.
// Returns whether a version was added; `out` gets the new or existing one.
Result<bool> RecordVersion(Workspace& ws, const NewVersion& v, VersionInfo& out);

}  // namespace detops

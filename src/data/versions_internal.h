#pragma once
// Writing version rows. Internal to the data module.

#include "data/data.h"
#include "data/origins.h"

namespace detops {

struct NewVersion {
  std::string dataset;
  std::string source;
  std::string format;
  const Manifest* manifest = nullptr;  // canonical
  const std::vector<SourceIssue>* issues = nullptr;
  const BoxOrigins* origins = nullptr;  // optional; by manifest image index
  int64_t parent_id = 0;                // the parent's row id; 0: the dataset's latest version
  std::string derivation;               // derive's record (JSON text); empty when imported
};

// Inside a transaction: stores the manifest blob, creates the dataset when
// new, and adds version N+1 unless the latest version has the same content.
// Returns whether a version was added; `out` gets the new or existing one
// (which gets `origins` when it was recorded without them).
Result<bool> RecordVersion(Workspace& ws, const NewVersion& v, VersionInfo& out);

// The origins of a version's boxes; empty when it was recorded without.
Result<BoxOrigins> LoadOrigins(Workspace& ws, const VersionInfo& version);

}  // namespace detops
